/**
 * Hybrid search over a collection's segments: BM25 and dense retrieval in every segment, merged,
 * de-duplicated by chunk id, filtered, and fused (reciprocal rank fusion or a weighted blend of
 * min-max normalised scores). Reranking with the cross-encoder stays with the caller, which reranks the
 * fused top-N and can record the result with `applyRerank`.
 *
 * Filters and tombstones are applied inside each retriever (as a mask over the segment's chunks) before
 * its top-N is taken, so a selective filter never starves the results. A tombstone hides one revision of a
 * document (its `documentKey`) or, as a bare document id, every revision of it. BM25 uses collection-wide idf
 * (document frequencies summed over the segments), so scores from segments of different sizes are
 * comparable. A chunk id held by several segments (redelivery, re-ingestion) is answered only from the
 * newest of them (by header createdAt, then position), even when only an older copy matched.
 */
import { bm25Idf, prepareText } from "./bm25.ts";
import { compareAge, type MetadataValue, type Segment, type StoredChunk } from "./segment.ts";
import { documentKey } from "./types.ts";
import type { VectorInput } from "./vector-index.ts";

export type SearchMode = "hybrid" | "dense" | "bm25";
export type FusionMethod = "rrf" | "weighted";

export interface SearchFilters {
  /** Only chunks of these documents (public document ids: every revision of each matches). */
  documentIds?: readonly string[] | ReadonlySet<string>;
  /** Only documents of these content types (media type compared case-insensitively, parameters ignored). */
  contentTypes?: readonly string[];
  /** Only documents whose metadata has every one of these key/value pairs (strict equality). */
  metadata?: Readonly<Record<string, MetadataValue>>;
}

export interface SearchQuery {
  text: string;
  /** The query embedding; required for "dense" and "hybrid". */
  vector?: VectorInput;
  /** Number of fused results returned. */
  k: number;
  mode: SearchMode;
  /** Hybrid fusion method (default "rrf"). */
  fusion?: FusionMethod;
  /**
   * Retriever weights. RRF: multipliers of each 1/(rrfK + rank) term (default 1 and 1). Weighted: blend
   * of the min-max normalised scores (default 0.5 and 0.5).
   */
  weights?: { bm25?: number; dense?: number };
  /** Depth of each retriever's list before fusion (default max(k, 100)); filters apply before it is cut. */
  candidates?: number;
  /** The RRF constant (default 60). */
  rrfK?: number;
  filters?: SearchFilters;
  /**
   * Deleted or replaced documents: `documentKey`s (`<documentId>@<revision>`, hiding that revision) and/or
   * bare document ids (hiding every revision of the document).
   */
  tombstones?: ReadonlySet<string>;
}

export interface CandidateScores {
  bm25?: number;
  dense?: number;
  fused: number;
  /** Set by reranking (domain/rerank.ts): the cross-encoder's probability and the combined score. */
  rerank?: number;
  combined?: number;
}

export interface Candidate {
  chunk: StoredChunk;
  /** The segment the chunk was read from. */
  segmentId: string;
  scores: CandidateScores;
  /** 1-based ranks in each retriever's merged list. */
  ranks: { bm25?: number; dense?: number };
}

export const DEFAULT_RRF_K = 60;
export const DEFAULT_CANDIDATES = 100;

interface Hit {
  chunkId: string;
  score: number;
  segment: Segment;
  /** Recency rank of the segment (higher = newer). */
  age: number;
  ordinal: number;
}

function mediaType(contentType: string): string {
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

/**
 * Allowed chunks of `segment` as a 0/1 mask by chunk ordinal; undefined when every chunk is allowed,
 * null when none is.
 */
function segmentMask(
  segment: Segment,
  filters: SearchFilters | undefined,
  tombstones: ReadonlySet<string> | undefined,
): Uint8Array | null | undefined {
  const filtering =
    filters !== undefined &&
    (filters.documentIds !== undefined || filters.contentTypes !== undefined || filters.metadata !== undefined);
  // Does any tombstone hit this segment? Iterate the smaller side; a tombstone matches a document's key
  // (one revision) or its public id (every revision).
  let tombstoned = false;
  if (tombstones !== undefined && tombstones.size > 0) {
    if (tombstones.size <= segment.documents.size) {
      for (const id of tombstones) {
        if (segment.documents.has(id) || segment.documentKeys.has(id)) {
          tombstoned = true;
          break;
        }
      }
    } else {
      for (const [key, doc] of segment.documents) {
        if (tombstones.has(key) || tombstones.has(doc.info.documentId)) {
          tombstoned = true;
          break;
        }
      }
    }
  }
  if (!filtering && !tombstoned) return undefined;
  const documentIds =
    filters?.documentIds === undefined
      ? undefined
      : filters.documentIds instanceof Set
        ? (filters.documentIds as ReadonlySet<string>)
        : new Set(filters.documentIds as readonly string[]);
  const contentTypes = filters?.contentTypes === undefined ? undefined : new Set(filters.contentTypes.map(mediaType));
  const metadata = filters?.metadata === undefined ? undefined : Object.entries(filters.metadata);
  const mask = new Uint8Array(segment.chunks.length);
  let allowed = 0;
  /** Allows the chunks of the document stored under `key` unless it is tombstoned or filtered out. */
  const consider = (key: string) => {
    const doc = segment.documents.get(key);
    if (doc === undefined) return;
    if (tombstoned && (tombstones?.has(key) || tombstones?.has(doc.info.documentId))) return;
    if (contentTypes !== undefined && !contentTypes.has(mediaType(doc.info.contentType))) return;
    if (metadata !== undefined) {
      const own = doc.info.metadata;
      for (const [key, value] of metadata) {
        if (own === undefined || !Object.hasOwn(own, key) || own[key] !== value) return;
      }
    }
    for (const ordinal of doc.ordinals) mask[ordinal] = 1;
    allowed += doc.ordinals.length;
  };
  // `documentIds` are public ids: iterate whichever is smaller, the filter or the segment's public ids.
  if (documentIds !== undefined && documentIds.size < segment.documentKeys.size) {
    for (const id of documentIds) {
      const keys = segment.documentKeys.get(id);
      if (keys !== undefined) for (const key of keys) consider(key);
    }
  } else {
    for (const [key, doc] of segment.documents) {
      if (documentIds === undefined || documentIds.has(doc.info.documentId)) consider(key);
    }
  }
  return allowed === 0 ? null : mask;
}

/**
 * Merges per-segment hit lists: one hit per chunk id, best first, top `depth`. A hit is dropped when a
 * newer segment also holds its chunk id (that newer version supersedes it, whether or not it matched),
 * unless that newer version is hidden: a revision still being indexed, or one that failed, must not
 * take the place of the revision search shows.
 */
function mergeHits(
  lists: Hit[][],
  depth: number,
  oldestFirst: readonly Segment[],
  hidden: ReadonlySet<string> | undefined,
): Hit[] {
  const byChunk = new Map<string, Hit>();
  for (const list of lists) {
    for (const hit of list) {
      let superseded = false;
      for (let age = hit.age + 1; age < oldestFirst.length && !superseded; age += 1) {
        const newer = oldestFirst[age] as Segment;
        const ordinal = newer.chunkOrdinals.get(hit.chunkId);
        superseded = ordinal !== undefined && !isHidden(newer.chunks[ordinal] as StoredChunk, hidden);
      }
      if (!superseded && !byChunk.has(hit.chunkId)) byChunk.set(hit.chunkId, hit);
    }
  }
  return [...byChunk.values()]
    .sort((a, b) => b.score - a.score || (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0))
    .slice(0, depth);
}

/** A tombstone names a revision (its document key) or every revision (the public document id). */
const isHidden = (chunk: StoredChunk, hidden: ReadonlySet<string> | undefined) =>
  hidden !== undefined && (hidden.has(documentKey(chunk)) || hidden.has(chunk.documentId));

function minMax(hits: readonly Hit[]): (score: number) => number {
  if (hits.length === 0) return () => 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const hit of hits) {
    if (hit.score < min) min = hit.score;
    if (hit.score > max) max = hit.score;
  }
  const range = max - min;
  return range > 0 ? (score) => (score - min) / range : () => 1;
}

/**
 * Searches every segment and returns up to `query.k` fused candidates, best first. In "bm25" and
 * "dense" mode `scores.fused` is that retriever's score; in "hybrid" mode it is the RRF or weighted score.
 */
export function searchSegments(segments: readonly Segment[], query: SearchQuery): Candidate[] {
  const { mode } = query;
  const k = Math.floor(query.k);
  if (!(k > 0)) return [];
  const useDense = mode === "dense" || mode === "hybrid";
  const useBm25 = mode === "bm25" || mode === "hybrid";
  if (useDense && query.vector === undefined) throw new Error(`search mode "${mode}" needs query.vector`);
  const depth = Math.max(1, Math.floor(query.candidates ?? Math.max(k, DEFAULT_CANDIDATES)));

  // Oldest first (a segment passed twice counts once); age = position in that order.
  const oldestFirst = [...new Set(segments)]
    .map((segment, position) => ({ segment, position }))
    .sort((a, b) => compareAge(a.segment, a.position, b.segment, b.position))
    .map(({ segment }) => segment);
  const ages = new Map(oldestFirst.map((segment, age) => [segment, age]));

  const terms = useBm25 ? prepareText(query.text) : [];
  let idf: Map<string, number> | undefined;
  if (terms.length > 0 && oldestFirst.length > 1) {
    const docCount = oldestFirst.reduce((sum, segment) => sum + segment.bm25.size, 0);
    idf = new Map();
    for (const term of new Set(terms)) {
      let df = 0;
      for (const segment of oldestFirst) df += segment.bm25.documentFrequency(term);
      if (df > 0) idf.set(term, bm25Idf(docCount, df, oldestFirst[0]?.bm25.params.k));
    }
  }

  const denseLists: Hit[][] = [];
  const bm25Lists: Hit[][] = [];
  for (const segment of oldestFirst) {
    if (segment.chunks.length === 0) continue;
    const mask = segmentMask(segment, query.filters, query.tombstones);
    if (mask === null) continue;
    const age = ages.get(segment) as number;
    if (useDense) {
      const hits = segment.vectors.search(
        query.vector as VectorInput,
        depth,
        mask === undefined ? {} : { allow: mask },
      );
      denseLists.push(hits.map((hit) => ({ chunkId: hit.id, score: hit.score, segment, age, ordinal: hit.label })));
    }
    if (useBm25 && terms.length > 0) {
      const order = segment.bm25ToChunk;
      let allow = mask;
      if (mask !== undefined && order !== undefined)
        allow = Uint8Array.from(order, (ordinal) => mask[ordinal] as number);
      const options = { ...(idf === undefined ? {} : { idf }), ...(allow === undefined ? {} : { allow }) };
      const hits = segment.bm25.search(terms, depth, options);
      bm25Lists.push(
        hits.map((hit) => ({
          chunkId: hit.id,
          score: hit.score,
          segment,
          age,
          ordinal: order === undefined ? hit.ordinal : (order[hit.ordinal] as number),
        })),
      );
    }
  }
  const dense = mergeHits(denseLists, depth, oldestFirst, query.tombstones);
  const bm25 = mergeHits(bm25Lists, depth, oldestFirst, query.tombstones);

  // Fuse. One entry per chunk id; the chunk text comes from the newest segment that returned it.
  const fusion = query.fusion ?? "rrf";
  const rrfK = query.rrfK ?? DEFAULT_RRF_K;
  const weightDense = query.weights?.dense ?? (fusion === "weighted" ? 0.5 : 1);
  const weightBm25 = query.weights?.bm25 ?? (fusion === "weighted" ? 0.5 : 1);
  const normDense = minMax(dense);
  const normBm25 = minMax(bm25);
  const fused = new Map<string, Candidate & { age: number }>();
  const add = (hit: Hit, rank: number, retriever: "dense" | "bm25") => {
    let candidate = fused.get(hit.chunkId);
    if (candidate === undefined || hit.age > candidate.age) {
      const chunk = hit.segment.chunks[hit.ordinal] as StoredChunk;
      const previous = candidate;
      candidate = { chunk, segmentId: hit.segment.header.segmentId, scores: { fused: 0 }, ranks: {}, age: hit.age };
      if (previous !== undefined) {
        candidate.scores = previous.scores;
        candidate.ranks = previous.ranks;
      }
      fused.set(hit.chunkId, candidate);
    }
    candidate.scores[retriever] = hit.score;
    candidate.ranks[retriever] = rank;
    if (mode !== "hybrid") candidate.scores.fused = hit.score;
    else if (fusion === "rrf") {
      candidate.scores.fused += (retriever === "dense" ? weightDense : weightBm25) / (rrfK + rank);
    } else {
      candidate.scores.fused +=
        retriever === "dense" ? weightDense * normDense(hit.score) : weightBm25 * normBm25(hit.score);
    }
  };
  dense.forEach((hit, i) => {
    add(hit, i + 1, "dense");
  });
  bm25.forEach((hit, i) => {
    add(hit, i + 1, "bm25");
  });

  return [...fused.values()]
    .sort(
      (a, b) =>
        b.scores.fused - a.scores.fused ||
        (b.scores.dense ?? Number.NEGATIVE_INFINITY) - (a.scores.dense ?? Number.NEGATIVE_INFINITY) ||
        (b.scores.bm25 ?? Number.NEGATIVE_INFINITY) - (a.scores.bm25 ?? Number.NEGATIVE_INFINITY) ||
        (a.chunk.chunkId < b.chunk.chunkId ? -1 : a.chunk.chunkId > b.chunk.chunkId ? 1 : 0),
    )
    .slice(0, k)
    .map(({ age: _age, ...candidate }) => candidate);
}

/**
 * Records cross-encoder scores (`rerankScores[i]` for `candidates[i]`) and returns the candidates
 * re-sorted by them, best first (ties keep the fused order). The input is not modified.
 */
export function applyRerank(candidates: readonly Candidate[], rerankScores: ArrayLike<number>): Candidate[] {
  if (rerankScores.length !== candidates.length) {
    throw new Error(`applyRerank: ${rerankScores.length} scores for ${candidates.length} candidates`);
  }
  return candidates
    .map((candidate, i) => ({
      ...candidate,
      scores: { ...candidate.scores, rerank: rerankScores[i] as number },
    }))
    .sort((a, b) => (b.scores.rerank as number) - (a.scores.rerank as number));
}

// ---------------------------------------------------------------------------------------------
// Pagination

export class InvalidCursorError extends Error {
  override name = "InvalidCursorError";
}

interface CursorJson {
  o: number;
  /** Optional fingerprint of the query the cursor belongs to. */
  q?: string;
}

/** An opaque cursor: base64url JSON of the offset (and optionally a query fingerprint). */
export function encodeCursor(offset: number, fingerprint?: string): string {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`invalid cursor offset ${offset}`);
  const json: CursorJson = fingerprint === undefined ? { o: offset } : { o: offset, q: fingerprint };
  return Buffer.from(JSON.stringify(json), "utf8").toString("base64url");
}

/**
 * The offset a cursor stands for (0 when there is none). Throws `InvalidCursorError` when the cursor is
 * malformed or, if `fingerprint` is given, was issued for another query.
 */
export function decodeCursor(cursor: string | null | undefined, fingerprint?: string): number {
  if (cursor === undefined || cursor === null || cursor === "") return 0;
  let json: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    json = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw new InvalidCursorError("invalid cursor");
  }
  const { o, q } = (json ?? {}) as Partial<CursorJson>;
  if (typeof o !== "number" || !Number.isSafeInteger(o) || o < 0) throw new InvalidCursorError("invalid cursor");
  if (fingerprint !== undefined && q !== fingerprint) throw new InvalidCursorError("cursor belongs to another query");
  return o;
}

/** One page of `items` starting at the cursor's offset, and the cursor of the next page if there is one. */
export function paginate<T>(
  items: readonly T[],
  pageSize: number,
  cursor?: string | null,
  fingerprint?: string,
): { items: T[]; nextCursor?: string } {
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new RangeError(`invalid page size ${pageSize}`);
  const offset = decodeCursor(cursor, fingerprint);
  const page = items.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  return next < items.length ? { items: page, nextCursor: encodeCursor(next, fingerprint) } : { items: page };
}
