/**
 * Hybrid search over a collection's segments, in two halves so the first can run on several machines:
 *
 * 1. `retrieve` (a shard's work): BM25 and dense retrieval in each of a set of segments, the chunks of
 *    masked documents (see visibility.ts) and those the filters exclude skipped inside each retriever
 *    (a mask over the segment's chunks) before its top-N is taken, so a selective filter never starves
 *    the results. BM25 uses collection-wide idf (document frequencies summed over every segment of the
 *    collection, given by the caller), so scores from segments of different sizes and from different
 *    shards are comparable. Dense retrieval is exact in small segments (faiss flat) and approximate in
 *    large ones (IVF-PQ, see ann.ts), whose shortlist — pooled over the segments — is re-scored exactly
 *    with the stored vectors. A chunk id held by several segments (redelivery, re-ingestion) is answered
 *    only from the newest of them (by age, given by the caller), even when only an older copy matched.
 * 2. `mergeLists` + `fuse` (the coordinator's): the per-shard lists merged into one per retriever, then
 *    fused (reciprocal rank fusion or a weighted blend of min-max normalised scores).
 *
 * `searchSegments` does both in one process. Reranking with the cross-encoder stays with the caller,
 * which reranks the fused top-N and can record the result with `applyRerank`.
 */
import { searchIvfPq } from "./ann.ts";
import { utf8Bytes } from "./binary.ts";
import { bm25Idf, prepareText, scoreBm25, type TermPostings } from "./bm25.ts";
import { compareAge, type MetadataValue, type Segment, type StoredChunk } from "./segment.ts";
import type { LabelHit, VectorInput } from "./vector-index.ts";
import { normalizeInto } from "./vector-index.ts";
import { isMasked, maskTargets } from "./visibility.ts";

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

/** How approximate dense retrieval trades recall for time. */
export interface AnnSettings {
  /** Inverted lists scanned per segment (default 48). */
  nprobe: number;
  /** Shortlist re-scored exactly, as a multiple of the retrieval depth (default 4). */
  rescore: number;
}

export const DEFAULT_ANN: Readonly<AnnSettings> = Object.freeze({ nprobe: 48, rescore: 4 });

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
   * Masked documents (deleted, replaced, or pending: a job not completed): `documentKey`s (`<documentId>@<revision>`, hiding that revision)
   * and/or bare document ids (hiding every revision of the document).
   */
  tombstones?: ReadonlySet<string>;
  ann?: Partial<AnnSettings>;
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
/** A filter that leaves at most this many chunks of an ANN segment is answered by an exact scan of them. */
const EXACT_SCAN_LIMIT = 4096;

/** One retrieved chunk. Hits from another process carry their chunk (`chunk`) instead of a `segment`. */
export interface Hit {
  chunkId: string;
  score: number;
  segmentId: string;
  /** Recency of the segment in the collection (higher = newer). */
  age: number;
  ordinal: number;
  segment?: Segment;
  chunk?: StoredChunk;
}

/** What a shard returns: each retriever's best hits over its segments, best first. */
export interface RetrievedLists {
  dense: Hit[];
  bm25: Hit[];
}

/** A shard's part of a query: everything but the fusion. */
export interface RetrievalQuery {
  /** Index terms of the query (`prepareText`), for BM25; empty for dense only. */
  terms: readonly string[];
  /** Normalised query embedding, for dense retrieval. */
  vector?: Float32Array;
  depth: number;
  filters?: SearchFilters;
  masked?: ReadonlySet<string>;
  /** Collection-wide idf per term (default: computed over the given segments). */
  idf?: ReadonlyMap<string, number>;
  ann?: Partial<AnnSettings>;
}

export interface AgedSegment {
  segment: Segment;
  age: number;
}

function mediaType(contentType: string): string {
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

/** Every segment with its age: oldest first by createdAt, then position (a segment given twice counts once). */
export function agesOf(segments: readonly Segment[]): AgedSegment[] {
  return [...new Set(segments)]
    .map((segment, position) => ({ segment, position }))
    .sort((a, b) => compareAge(a.segment, a.position, b.segment, b.position))
    .map(({ segment }, age) => ({ segment, age }));
}

/** Collection-wide idf of the terms: document frequencies and sizes summed over the segments. */
export function collectionIdf(segments: readonly Segment[], terms: readonly string[]): Map<string, number> {
  const idf = new Map<string, number>();
  const docCount = segments.reduce((sum, segment) => sum + segment.size, 0);
  const k = segments[0]?.header.bm25.params.k;
  for (const term of new Set(terms)) {
    let df = 0;
    for (const segment of segments) {
      const t = segment.terms.find(term);
      if (t >= 0) df += segment.terms.documentFrequency(t);
    }
    if (df > 0) idf.set(term, bm25Idf(docCount, df, k));
  }
  return idf;
}

/**
 * Allowed chunks of `segment` as a 0/1 mask by chunk ordinal with the count it allows; undefined when
 * every chunk is allowed, null when none is.
 */
export function segmentMask(
  segment: Segment,
  filters: SearchFilters | undefined,
  masked: ReadonlySet<string> | undefined,
): { mask: Uint8Array; allowed: number } | null | undefined {
  const docs = segment.documents;
  const n = segment.size;
  // The documents masked here: look each entry up, or scan the documents when they are fewer.
  const hidden = new Set<number>();
  if (masked !== undefined && masked.size > 0) {
    if (masked.size * 4 <= docs.count) {
      for (const entry of masked) {
        for (const { documentId, revision } of maskTargets(entry)) {
          if (revision === undefined) {
            const [lo, hi] = docs.withId(documentId);
            for (let d = lo; d < hi; d += 1) hidden.add(d);
          } else {
            const d = docs.find(documentId, revision);
            if (d >= 0) hidden.add(d);
          }
        }
      }
    } else {
      for (let d = 0; d < docs.count; d += 1) if (isMasked(masked, docs.documentId(d), docs.revision(d))) hidden.add(d);
    }
  }
  const filtering =
    filters !== undefined &&
    (filters.documentIds !== undefined || filters.contentTypes !== undefined || filters.metadata !== undefined);
  if (!filtering && hidden.size === 0) return undefined;
  const mask = new Uint8Array(n);
  let allowed = 0;
  const allow = (d: number) => {
    if (hidden.has(d)) return;
    const start = docs.chunkStart[d] as number;
    const end = docs.chunkStart[d + 1] as number;
    mask.fill(1, start, end);
    allowed += end - start;
  };
  if (!filtering) {
    for (let d = 0; d < docs.count; d += 1) allow(d);
    return allowed === 0 ? null : { mask, allowed };
  }
  // Content types and metadata are stored once per distinct value: decide each value once.
  let typeAllowed: boolean[] | undefined;
  if (filters.contentTypes !== undefined) {
    const wanted = new Set(filters.contentTypes.map(mediaType));
    typeAllowed = docs.contentTypes.map((type) => wanted.has(mediaType(type)));
  }
  const metadata = filters.metadata === undefined ? undefined : Object.entries(filters.metadata);
  const metadataAllowed = new Map<number, boolean>();
  const passes = (d: number) => {
    if (typeAllowed !== undefined && !typeAllowed[docs.contentTypeIndex[d] as number]) return false;
    if (metadata !== undefined) {
      const index = docs.metadataIndex[d] as number;
      let ok = metadataAllowed.get(index);
      if (ok === undefined) {
        const own = docs.metadata(d);
        ok = metadata.every(([key, value]) => own !== undefined && Object.hasOwn(own, key) && own[key] === value);
        metadataAllowed.set(index, ok);
      }
      if (!ok) return false;
    }
    return true;
  };
  if (filters.documentIds !== undefined) {
    // Public document ids: every revision of each.
    for (const id of new Set(filters.documentIds)) {
      const [lo, hi] = docs.withId(id);
      for (let d = lo; d < hi; d += 1) if (passes(d)) allow(d);
    }
  } else {
    for (let d = 0; d < docs.count; d += 1) if (passes(d)) allow(d);
  }
  return allowed === 0 ? null : { mask, allowed };
}

const scratchSpace = new WeakMap<Segment, { scores: Float64Array; seen: Uint8Array }>();

function scratch(segment: Segment) {
  let space = scratchSpace.get(segment);
  if (space === undefined) {
    space = { scores: new Float64Array(segment.size), seen: new Uint8Array(segment.size) };
    scratchSpace.set(segment, space);
  }
  return space;
}

function compareHits(a: Hit, b: Hit): number {
  return b.score - a.score || (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0);
}

/**
 * Merges hit lists: one hit per chunk id (the newest segment's), best first, top `depth`. With
 * `segments`, a hit is also dropped when a newer one of them holds its chunk id (that newer version
 * supersedes it, whether or not it matched), unless that newer version is masked: a revision still
 * being indexed, or one that failed (`pending`), must not take the place of the revision search shows.
 */
export function mergeLists(
  lists: readonly Hit[][],
  depth: number,
  segments?: readonly AgedSegment[],
  masked?: ReadonlySet<string>,
): Hit[] {
  const byChunk = new Map<string, Hit>();
  const newer = segments === undefined ? [] : [...segments].sort((a, b) => a.age - b.age);
  const supersedes = (segment: Segment, key: Uint8Array) => {
    const ordinal = segment.chunkIds.find(key);
    if (ordinal < 0) return false;
    if (masked === undefined || masked.size === 0) return true;
    const docs = segment.documents;
    const doc = docs.documentOf(ordinal);
    return !isMasked(masked, docs.documentId(doc), docs.revision(doc));
  };
  for (const list of lists) {
    for (const hit of list) {
      const held = byChunk.get(hit.chunkId);
      if (held !== undefined && held.age >= hit.age) continue;
      if (newer.length > 0) {
        const key = utf8Bytes(hit.chunkId);
        if (newer.some(({ segment, age }) => age > hit.age && supersedes(segment, key))) continue;
      }
      byChunk.set(hit.chunkId, hit);
    }
  }
  return [...byChunk.values()].sort(compareHits).slice(0, depth);
}

/**
 * A shard's retrieval: each retriever's best `depth` hits over `segments`, superseded copies removed.
 * Dense hits carry exact scores (ANN shortlists are re-scored).
 */
export async function retrieve(segments: readonly AgedSegment[], query: RetrievalQuery): Promise<RetrievedLists> {
  const depth = Math.max(1, Math.floor(query.depth));
  const live = segments.filter(({ segment }) => segment.size > 0);
  const masks = new Map<Segment, { mask: Uint8Array; allowed: number } | undefined>();
  for (const { segment } of live) {
    const mask = segmentMask(segment, query.filters, query.masked);
    if (mask !== null) masks.set(segment, mask);
  }
  const searched = live.filter(({ segment }) => masks.has(segment));
  const [dense, bm25] = await Promise.all([
    query.vector === undefined ? [] : denseHits(searched, masks, query.vector, depth, { ...DEFAULT_ANN, ...query.ann }),
    query.terms.length === 0 ? [] : bm25Hits(searched, masks, query, depth),
  ]);
  return {
    dense: mergeLists([dense], depth, segments, query.masked),
    bm25: mergeLists([bm25], depth, segments, query.masked),
  };
}

async function bm25Hits(
  segments: readonly AgedSegment[],
  masks: ReadonlyMap<Segment, { mask: Uint8Array; allowed: number } | undefined>,
  query: RetrievalQuery,
  depth: number,
): Promise<Hit[]> {
  const idf =
    query.idf ??
    collectionIdf(
      segments.map(({ segment }) => segment),
      query.terms,
    );
  const lists = await Promise.all(
    segments.map(async ({ segment, age }) => {
      const found = query.terms.map((term) => segment.terms.find(term));
      const unique = [...new Set(found.filter((t) => t >= 0))];
      if (unique.length === 0) return [];
      const blocks = await segment.postings(unique);
      const k = segment.header.bm25.params.k;
      const postings: TermPostings[] = [];
      found.forEach((t, i) => {
        if (t < 0) return;
        const block = blocks[unique.indexOf(t)];
        if (block === undefined) return;
        const local = bm25Idf(segment.size, segment.terms.documentFrequency(t), k);
        const global = idf.get(query.terms[i] as string);
        postings.push({ ...block, scale: global === undefined || local === 0 ? 1 : global / local });
      });
      return scoreBm25(segment.size, postings, depth, masks.get(segment)?.mask, scratch(segment)).map(
        ({ ordinal, score }): Hit => ({
          chunkId: segment.chunkIds.id(ordinal),
          score,
          segmentId: segment.id,
          age,
          ordinal,
          segment,
        }),
      );
    }),
  );
  return lists.flat();
}

async function denseHits(
  segments: readonly AgedSegment[],
  masks: ReadonlyMap<Segment, { mask: Uint8Array; allowed: number } | undefined>,
  vector: Float32Array,
  depth: number,
  ann: AnnSettings,
): Promise<Hit[]> {
  const exact: Hit[] = [];
  // Each ANN segment's shortlist is re-scored exactly (per segment, so results do not depend on how
  // segments are grouped into shards).
  const shortlistSize = Math.max(depth, Math.ceil(depth * ann.rescore));
  const toHit = (aged: AgedSegment, { ordinal, score }: LabelHit): Hit => ({
    chunkId: aged.segment.chunkIds.id(ordinal),
    score,
    segmentId: aged.segment.id,
    age: aged.age,
    ordinal,
    segment: aged.segment,
  });
  /** Exact scores of the given chunks of a segment, best `depth` of them. */
  const rescore = async (aged: AgedSegment, ordinals: number[]) => {
    const rows = await aged.segment.vectors(ordinals);
    const scored = ordinals.map((ordinal, i) => ({ ordinal, score: dot(vector, rows[i] as Float32Array) }));
    scored.sort((a, b) => b.score - a.score || a.ordinal - b.ordinal);
    for (const hit of scored.slice(0, depth)) exact.push(toHit(aged, hit));
  };
  const reads: Promise<void>[] = [];
  for (const aged of segments) {
    const { segment } = aged;
    const mask = masks.get(segment);
    const flat = segment.flatIndex;
    const index = segment.annIndex;
    if (flat !== undefined) {
      for (const hit of flat.search(vector, depth, mask?.mask)) exact.push(toHit(aged, hit));
    } else if (index !== undefined && mask !== undefined && mask.allowed <= EXACT_SCAN_LIMIT) {
      // A selective filter: score its few chunks exactly.
      const allowed: number[] = [];
      mask.mask.forEach((bit, ordinal) => {
        if (bit !== 0) allowed.push(ordinal);
      });
      reads.push(rescore(aged, allowed));
    } else if (index !== undefined) {
      const options =
        mask === undefined ? { nprobe: ann.nprobe } : { nprobe: ann.nprobe, allow: mask.mask, allowed: mask.allowed };
      const shortlist = searchIvfPq(index, vector, shortlistSize, options);
      reads.push(
        rescore(
          aged,
          shortlist.map((hit) => hit.ordinal),
        ),
      );
    }
  }
  await Promise.all(reads);
  return exact;
}

/** Inner product in float32 steps, as faiss computes it, so exact and flat scores agree. */
function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum = Math.fround(sum + Math.fround((a[i] as number) * (b[i] as number)));
  return sum;
}

export interface FusedHit {
  /** The hit the chunk is read from (the newest copy among those the retrievers returned). */
  hit: Hit;
  scores: CandidateScores;
  ranks: { bm25?: number; dense?: number };
}

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
 * Fuses the merged retriever lists into the best `query.k`, best first. In "bm25" and "dense" mode
 * `scores.fused` is that retriever's score; in "hybrid" mode it is the RRF or weighted score.
 */
export function fuse(
  lists: RetrievedLists,
  query: Pick<SearchQuery, "k" | "mode" | "fusion" | "weights" | "rrfK">,
): FusedHit[] {
  const { mode } = query;
  const fusion = query.fusion ?? "rrf";
  const rrfK = query.rrfK ?? DEFAULT_RRF_K;
  const weightDense = query.weights?.dense ?? (fusion === "weighted" ? 0.5 : 1);
  const weightBm25 = query.weights?.bm25 ?? (fusion === "weighted" ? 0.5 : 1);
  const normDense = minMax(lists.dense);
  const normBm25 = minMax(lists.bm25);
  const fused = new Map<string, FusedHit>();
  const add = (hit: Hit, rank: number, retriever: "dense" | "bm25") => {
    let entry = fused.get(hit.chunkId);
    if (entry === undefined) {
      entry = { hit, scores: { fused: 0 }, ranks: {} };
      fused.set(hit.chunkId, entry);
    } else if (hit.age > entry.hit.age) entry.hit = hit;
    entry.scores[retriever] = hit.score;
    entry.ranks[retriever] = rank;
    if (mode !== "hybrid") entry.scores.fused = hit.score;
    else if (fusion === "rrf") {
      entry.scores.fused += (retriever === "dense" ? weightDense : weightBm25) / (rrfK + rank);
    } else {
      entry.scores.fused +=
        retriever === "dense" ? weightDense * normDense(hit.score) : weightBm25 * normBm25(hit.score);
    }
  };
  if (mode !== "bm25") {
    lists.dense.forEach((hit, i) => {
      add(hit, i + 1, "dense");
    });
  }
  if (mode !== "dense") {
    lists.bm25.forEach((hit, i) => {
      add(hit, i + 1, "bm25");
    });
  }
  return [...fused.values()]
    .sort(
      (a, b) =>
        b.scores.fused - a.scores.fused ||
        (b.scores.dense ?? Number.NEGATIVE_INFINITY) - (a.scores.dense ?? Number.NEGATIVE_INFINITY) ||
        (b.scores.bm25 ?? Number.NEGATIVE_INFINITY) - (a.scores.bm25 ?? Number.NEGATIVE_INFINITY) ||
        (a.hit.chunkId < b.hit.chunkId ? -1 : a.hit.chunkId > b.hit.chunkId ? 1 : 0),
    )
    .slice(0, Math.max(0, Math.floor(query.k)));
}

/** The chunks of hits: carried by remote hits, read from their segments (batched per segment) otherwise. */
export async function hydrate(hits: readonly Hit[]): Promise<StoredChunk[]> {
  const out = new Array<StoredChunk>(hits.length);
  const bySegment = new Map<Segment, number[]>();
  hits.forEach((hit, i) => {
    if (hit.chunk !== undefined) out[i] = hit.chunk;
    else if (hit.segment !== undefined) {
      const positions = bySegment.get(hit.segment) ?? [];
      positions.push(i);
      bySegment.set(hit.segment, positions);
    } else throw new Error(`hit ${hit.chunkId} has neither its chunk nor its segment`);
  });
  await Promise.all(
    [...bySegment].map(async ([segment, positions]) => {
      const chunks = await segment.chunks(positions.map((i) => (hits[i] as Hit).ordinal));
      positions.forEach((i, j) => {
        out[i] = chunks[j] as StoredChunk;
      });
    }),
  );
  return out;
}

/** The query's retriever depth, terms and normalised vector. */
export function retrievalQuery(query: SearchQuery): RetrievalQuery {
  const k = Math.floor(query.k);
  const useDense = query.mode === "dense" || query.mode === "hybrid";
  const useBm25 = query.mode === "bm25" || query.mode === "hybrid";
  if (useDense && query.vector === undefined) throw new Error(`search mode "${query.mode}" needs query.vector`);
  const vector = useDense
    ? normalizeInto(query.vector as VectorInput, new Float32Array(query.vector?.length ?? 0))
    : undefined;
  const retrieval: RetrievalQuery = {
    terms: useBm25 ? prepareText(query.text) : [],
    depth: Math.max(1, Math.floor(query.candidates ?? Math.max(k, DEFAULT_CANDIDATES))),
  };
  if (vector !== undefined) retrieval.vector = vector;
  if (query.filters !== undefined) retrieval.filters = query.filters;
  if (query.tombstones !== undefined) retrieval.masked = query.tombstones;
  if (query.ann !== undefined) retrieval.ann = query.ann;
  return retrieval;
}

/** Fused candidates with their chunks. */
export async function candidatesOf(fused: readonly FusedHit[]): Promise<Candidate[]> {
  const chunks = await hydrate(fused.map((entry) => entry.hit));
  return fused.map((entry, i) => ({
    chunk: chunks[i] as StoredChunk,
    segmentId: entry.hit.segmentId,
    scores: entry.scores,
    ranks: entry.ranks,
  }));
}

/**
 * Searches every segment in this process and returns up to `query.k` fused candidates, best first.
 */
export async function searchSegments(segments: readonly Segment[], query: SearchQuery): Promise<Candidate[]> {
  if (!(Math.floor(query.k) > 0)) return [];
  const retrieval = retrievalQuery(query);
  const aged = agesOf(segments);
  if (retrieval.terms.length > 0) {
    retrieval.idf = collectionIdf(
      aged.map(({ segment }) => segment),
      retrieval.terms,
    );
  }
  const lists = await retrieve(aged, retrieval);
  return candidatesOf(fuse(lists, query));
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
