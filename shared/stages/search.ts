import { createHash } from "node:crypto";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import type { SearchRequest, SearchResponse, SearchResult } from "../api/schemas.ts";
import { highlight } from "../domain/highlight.ts";
import {
  type AgedSegment,
  type AnnSettings,
  type Candidate,
  candidatesOf,
  collectionIdf,
  decodeCursor,
  fuse,
  type Hit,
  hydrate,
  mergeLists,
  paginate,
  type RetrievalQuery,
  type RetrievedLists,
  retrievalQuery,
  retrieve,
  type SearchFilters,
} from "../domain/hybrid-search.ts";
import { type IndexManifest, LEGACY_MODEL_ID, type SegmentRef } from "../domain/manifest.ts";
import {
  type CrossEncoderPort,
  RERANK_DEFAULTS,
  RERANK_LIMITS,
  type RerankMethod,
  type RerankReport,
  type RerankSettings,
  rerankFused,
} from "../domain/rerank.ts";
import { memorySource, type OpenOptions, Segment, type StoredChunk } from "../domain/segment.ts";
import { maskedEntries } from "../domain/visibility.ts";
import type { SegmentBlobs } from "./ports.ts";

export {
  type SearchRequest,
  type SearchResponse,
  type SearchResult,
  searchRequest,
} from "../api/schemas.ts";

/** What search needs from the index bucket. */
export type SearchBlobs = Pick<SegmentBlobs, "read"> & Partial<Pick<SegmentBlobs, "source" | "prefetch" | "retain">>;

/** A shard's work, as one search function sends it to another (JSON). */
export interface ShardRequest {
  tenant: string;
  collection: string;
  /** The index searched and its model: a segment of another model is refused. */
  index?: string;
  model?: string;
  /** The shard's segments, each with its age in the whole collection (higher = newer). */
  segments: { id: string; key: string; bytes: number; age: number }[];
  query: {
    terms: string[];
    vector?: number[];
    depth: number;
    filters?: SearchFilters;
    masked: string[];
    /** Collection-wide idf of the terms. */
    idf: [string, number][];
    ann?: Partial<AnnSettings>;
  };
}

/** A hit as it travels back from a shard: with its chunk. */
export type WireHit = Omit<Hit, "segment" | "chunk"> & { chunk: StoredChunk };

export interface ShardResponse {
  dense: WireHit[];
  bm25: WireHit[];
  timings: Record<string, number>;
}

export interface SearchDeps {
  manifests: Pick<ManifestStore, "get">;
  blobs: SearchBlobs;
  /** The query's vector with model `model` (its query prefix or instruction). */
  embed: (text: string, model: string) => Promise<Float32Array>;
  /** The model of collections nothing was written to yet (their search finds nothing either way). */
  defaultModel?: string;
  /** The cross-encoder; undefined when none is installed. */
  reranker?: CrossEncoderPort;
  /** Why there is no cross-encoder, for the response (default: "no cross-encoder on the server"). */
  rerankUnavailable?: string;
  /** Server defaults for what a request may leave out (env RERANK_METHOD, RERANK_WEIGHT, RERANK_DEADLINE_MS). */
  rerankDefaults?: Partial<{ method: RerankMethod; weight: number; deadlineMs: number }>;
  /**
   * Collections with more chunks than `maxChunks` are split into shards of at most that many (whole
   * segments, oldest first), each searched by `invoke` (a search-shard Lambda function) in parallel.
   * Without it, every collection is searched in this process.
   */
  shards?: { maxChunks: number; invoke(shard: number, request: ShardRequest): Promise<ShardResponse> };
  ann?: Partial<AnnSettings>;
}

/**
 * Groups the manifest's segments (in manifest order: oldest first) into shards of at most `maxChunks`
 * chunks, filling each before starting the next (a segment larger than that is a shard of its own).
 * Old, large segments keep their shard as the collection grows; new ones join the last shard.
 */
export function planShards(segments: readonly SegmentRef[], maxChunks: number): SegmentRef[][] {
  const shards: SegmentRef[][] = [];
  let current: SegmentRef[] = [];
  let size = 0;
  for (const ref of segments) {
    if (current.length > 0 && size + ref.chunks > maxChunks) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(ref);
    size += ref.chunks;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/**
 * The segments this execution environment has opened, by id, for every collection it searches. Segments
 * are immutable, so each is opened once and kept while a manifest lists it; an environment holds only
 * what its collections use (a manifest that drops segments, after a compaction, drops them here too).
 */
export class SegmentCache {
  private readonly opened = new Map<string, Promise<Segment>>();
  private readonly dictionaries = new Map<string, Promise<Segment>>();
  private readonly live = new Map<string, Set<string>>();

  constructor(private readonly blobs: SearchBlobs) {}

  /** Opens by byte ranges when the blobs can, else from the whole object. */
  private async openRef(ref: Pick<SegmentRef, "key" | "bytes">, options: OpenOptions = {}): Promise<Segment> {
    const source = this.blobs.source
      ? this.blobs.source(ref.key, ref.bytes)
      : memorySource(await this.blobs.read(ref.key));
    return Segment.open(source, options);
  }

  /** The segment opened for search (its resident groups loaded); starts caching it locally. */
  open(ref: Pick<SegmentRef, "id" | "key" | "bytes">): Promise<Segment> {
    let segment = this.opened.get(ref.id);
    if (segment === undefined) {
      segment = this.openRef(ref);
      segment.catch(() => this.opened.delete(ref.id));
      this.opened.set(ref.id, segment);
    }
    return segment;
  }

  /**
   * Starts caching the segments whole (locally: /tmp in Lambda), after an answer rather than before it so
   * the downloads do not slow a cold first answer; one already cached or in progress is left alone.
   */
  cacheLocally(refs: readonly Pick<SegmentRef, "key" | "bytes">[]): void {
    for (const ref of refs) void this.blobs.prefetch?.(ref.key, ref.bytes)?.catch(() => undefined);
  }

  /** The segment with only its term dictionary (what a coordinator needs for collection-wide idf). */
  dictionary(ref: Pick<SegmentRef, "id" | "key" | "bytes">): Promise<Segment> {
    const full = this.opened.get(ref.id);
    if (full !== undefined) return full;
    let segment = this.dictionaries.get(ref.id);
    if (segment === undefined) {
      segment = this.openRef(ref, { groups: ["terms"] });
      segment.catch(() => this.dictionaries.delete(ref.id));
      this.dictionaries.set(ref.id, segment);
    }
    return segment;
  }

  /** Records what a collection (or one shard of it) uses now, and forgets segments nothing uses. */
  retain(scope: string, refs: readonly Pick<SegmentRef, "id" | "key">[]): void {
    for (const ref of refs) this.keys.set(ref.id, ref.key);
    this.live.set(scope, new Set(refs.map((ref) => ref.id)));
    const used = new Set([...this.live.values()].flatMap((ids) => [...ids]));
    for (const cache of [this.opened, this.dictionaries, this.keys]) {
      for (const id of [...cache.keys()]) if (!used.has(id)) cache.delete(id);
    }
    this.blobs.retain?.(new Set(this.keys.values()));
  }

  private readonly keys = new Map<string, string>();
}

/** A shard's search: retrieval over its segments, with the chunks of every hit it returns. */
export async function searchShard(request: ShardRequest, cache: SegmentCache): Promise<ShardResponse> {
  const timings: Record<string, number> = {};
  let started = performance.now();
  cache.retain(`${request.tenant}/${request.collection}/${request.index ?? ""}/shard`, request.segments);
  const aged: AgedSegment[] = await Promise.all(
    request.segments.map(async (ref) => ({ segment: await cache.open(ref), age: ref.age })),
  );
  checkSegments(
    aged.map(({ segment }) => segment),
    { index: request.index ?? "?", collection: request.collection, model: request.model },
    request.query.vector,
  );
  timings.load = elapsed(started);
  started = performance.now();
  const { query } = request;
  const retrieval: RetrievalQuery = {
    terms: query.terms,
    depth: query.depth,
    masked: new Set(query.masked),
    idf: new Map(query.idf),
  };
  if (query.vector !== undefined) retrieval.vector = Float32Array.from(query.vector);
  if (query.filters !== undefined) retrieval.filters = query.filters;
  if (query.ann !== undefined) retrieval.ann = query.ann;
  const lists = await retrieve(aged, retrieval);
  timings.retrieve = elapsed(started);
  started = performance.now();
  const wire = async (hits: Hit[]): Promise<WireHit[]> => {
    const chunks = await hydrate(hits);
    return hits.map(({ segment: _segment, chunk: _chunk, ...hit }, i) => ({ ...hit, chunk: chunks[i] as StoredChunk }));
  };
  const [dense, bm25] = await Promise.all([wire(lists.dense), wire(lists.bm25)]);
  timings.hydrate = elapsed(started);
  cache.cacheLocally(request.segments);
  return { dense, bm25, timings };
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100;

/**
 * Hybrid search over a tenant's collection. Every request reads the manifest (one consistent read),
 * so freshly indexed segments are searched at once; segments are opened once per execution environment
 * (a few byte ranges each) and kept. A collection larger than one shard is searched by shard functions
 * in parallel, this function merging their lists.
 */
export class SearchService {
  private readonly cache: SegmentCache;
  /** The model each collection's active index had last time, to embed the query while the manifest is read. */
  private readonly lastModel = new Map<string, string>();

  constructor(private readonly deps: SearchDeps) {
    this.cache = new SegmentCache(deps.blobs);
  }

  /**
   * Searches the collection's active index (or, for the migration's evaluation, index
   * `options.index`), embedding the query with that index's model.
   */
  async search(tenant: string, request: SearchRequest, options: { index?: string } = {}): Promise<SearchResponse> {
    const queryPrint = fingerprint(tenant, request);
    // A bad or foreign cursor fails before any work (InvalidCursorError → 400).
    const offset = decodeCursor(request.cursor, queryPrint);
    const timings: Record<string, number> = {};
    const time = async <T>(stage: string, work: () => Promise<T> | T): Promise<T> => {
      const started = performance.now();
      try {
        return await work();
      } finally {
        timings[stage] = Math.round((performance.now() - started) * 100) / 100;
      }
    };
    const began = performance.now();
    // The manifest read goes out first; the query is embedded, with the model the index had last
    // time, while DynamoDB answers (again with the right one only if the index changed model).
    const manifestRead = time("manifest", () => this.deps.manifests.get(tenant, request.collection, options.index));
    const indexKey = `${tenant}/${request.collection}/${options.index ?? ""}`;
    const guess = this.lastModel.get(indexKey) ?? this.deps.defaultModel ?? LEGACY_MODEL_ID;
    let embedding = request.mode === "bm25" ? undefined : time("embed", () => this.deps.embed(request.query, guess));
    // A failed embedding is thrown below; this only keeps a manifest error from leaving it unhandled.
    embedding?.catch(() => undefined);
    const manifest = await manifestRead;
    const model = manifest.model ?? guess;
    this.lastModel.set(indexKey, model);
    if (embedding && model !== guess) embedding = time("embed", () => this.deps.embed(request.query, model));
    const vector = await embedding;
    // One more than the page needs: whether there is a next page.
    const wanted = Math.max(request.rerankTopN, request.k + offset) + 1;
    const query = {
      text: request.query,
      ...(vector ? { vector } : {}),
      k: wanted,
      mode: request.mode,
      fusion: request.fusion,
      ...(request.weights ? { weights: request.weights } : {}),
      ...(request.filters ? { filters: request.filters } : {}),
      // Tombstoned revisions and pending ones (their job not COMPLETED) are masked alike, in every shard.
      tombstones: maskedEntries(manifest),
      ...(this.deps.ann ? { ann: this.deps.ann } : {}),
    };
    const retrieval = retrievalQuery(query);
    const shards = this.deps.shards ? planShards(manifest.segments, this.deps.shards.maxChunks) : [manifest.segments];
    const lists =
      shards.length > 1
        ? await this.fanOut(manifest, model, shards, retrieval, timings)
        : await this.local(manifest, model, retrieval, timings);
    const fused = await time("hydrate", () => candidatesOf(fuse(lists, query)));
    const { ranked, report: rerank } = await this.rerank(request, fused, time);
    const page = paginate(ranked, request.k, request.cursor, queryPrint);
    const results = await time("highlight", () => page.items.map((candidate) => toResult(candidate, request.query)));
    timings.total = Math.round((performance.now() - began) * 100) / 100;
    if (shards.length === 1) this.cache.cacheLocally(manifest.segments);
    return {
      results,
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      timings,
      segments: manifest.segments.length,
      ...(shards.length > 1 ? { shards: shards.length } : {}),
      index: manifest.index,
      model,
      rerank,
    };
  }

  /** The rerank hook: the cross-encoder reorders the fused top-N within the request's deadline (domain/rerank.ts). */
  private async rerank(
    request: SearchRequest,
    fused: Candidate[],
    time: <T>(stage: string, work: () => Promise<T>) => Promise<T>,
  ): Promise<{ ranked: Candidate[]; report: RerankReport }> {
    const defaults = this.deps.rerankDefaults ?? {};
    const settings: RerankSettings = {
      enabled: request.rerank,
      topN: request.rerankTopN,
      method: request.rerankMethod ?? defaults.method ?? RERANK_DEFAULTS.method,
      weight: request.rerankWeight ?? defaults.weight ?? RERANK_DEFAULTS.weight,
      deadlineMs: request.rerankDeadlineMs ?? defaults.deadlineMs ?? RERANK_LIMITS.deadlineMs.default,
    };
    const run = () =>
      rerankFused(
        request.query,
        fused,
        (candidate) => candidate.chunk.text,
        settings,
        this.deps.reranker,
        this.deps.rerankUnavailable,
      );
    // Timed only when the cross-encoder is asked.
    return settings.enabled && this.deps.reranker && fused.length > 0 ? time("rerank", run) : run();
  }

  /** Every segment searched in this process. */
  private async local(
    manifest: IndexManifest,
    model: string,
    retrieval: RetrievalQuery,
    timings: Record<string, number>,
  ): Promise<RetrievedLists> {
    let started = performance.now();
    this.cache.retain(`${manifest.tenant}/${manifest.collection}/${manifest.index}`, manifest.segments);
    // Manifest order is age order (oldest first).
    const aged = await Promise.all(
      manifest.segments.map(async (ref, age) => ({ segment: await this.cache.open(ref), age })),
    );
    checkSegments(
      aged.map(({ segment }) => segment),
      { index: manifest.index, collection: manifest.collection, model },
      retrieval.vector,
    );
    timings.load = elapsed(started);
    started = performance.now();
    if (retrieval.terms.length > 0) {
      retrieval.idf = collectionIdf(
        aged.map(({ segment }) => segment),
        retrieval.terms,
      );
    }
    const lists = await retrieve(aged, retrieval);
    timings.retrieve = elapsed(started);
    return lists;
  }

  /** Each shard searched by a shard function, in parallel; their lists merged here. */
  private async fanOut(
    manifest: IndexManifest,
    model: string,
    shards: SegmentRef[][],
    retrieval: RetrievalQuery,
    timings: Record<string, number>,
  ): Promise<RetrievedLists> {
    let started = performance.now();
    // Collection-wide idf needs every segment's term dictionary (and nothing else of them).
    this.cache.retain(`${manifest.tenant}/${manifest.collection}/${manifest.index}`, manifest.segments);
    const idf =
      retrieval.terms.length === 0
        ? new Map<string, number>()
        : collectionIdf(await Promise.all(manifest.segments.map((ref) => this.cache.dictionary(ref))), retrieval.terms);
    timings.load = elapsed(started);
    started = performance.now();
    const ages = new Map(manifest.segments.map((ref, age) => [ref.id, age]));
    const query: ShardRequest["query"] = {
      terms: [...retrieval.terms],
      depth: retrieval.depth,
      masked: [...(retrieval.masked ?? [])],
      idf: [...idf],
    };
    if (retrieval.vector !== undefined) query.vector = Array.from(retrieval.vector);
    if (retrieval.filters !== undefined) query.filters = normalisedFilters(retrieval.filters);
    if (retrieval.ann !== undefined) query.ann = retrieval.ann;
    const invoke = (this.deps.shards as NonNullable<SearchDeps["shards"]>).invoke;
    const answers = await Promise.all(
      shards.map((refs, shard) =>
        invoke(shard, {
          tenant: manifest.tenant,
          collection: manifest.collection,
          index: manifest.index,
          model,
          segments: refs.map((ref) => ({
            id: ref.id,
            key: ref.key,
            bytes: ref.bytes,
            age: ages.get(ref.id) as number,
          })),
          query,
        }),
      ),
    );
    timings.retrieve = elapsed(started);
    timings.shards = shards.length;
    return {
      dense: mergeLists(
        answers.map((answer) => answer.dense),
        retrieval.depth,
      ),
      bm25: mergeLists(
        answers.map((answer) => answer.bm25),
        retrieval.depth,
      ),
    };
  }
}

function normalisedFilters(filters: SearchFilters): SearchFilters {
  const out: SearchFilters = {};
  if (filters.documentIds !== undefined) out.documentIds = [...filters.documentIds];
  if (filters.contentTypes !== undefined) out.contentTypes = [...filters.contentTypes];
  if (filters.metadata !== undefined) out.metadata = filters.metadata;
  return out;
}

/**
 * Every segment searched holds vectors of the index's model (a segment without a model predates
 * them), with the query vector's dimension: a segment of another model is refused, never searched
 * with this query.
 */
function checkSegments(
  segments: readonly Segment[],
  index: { index: string; collection: string; model: string | undefined },
  vector: ArrayLike<number> | undefined,
): void {
  for (const segment of segments) {
    const { dimension, model } = segment.header;
    if (index.model !== undefined && model !== undefined && model !== index.model) {
      throw new Error(
        `segment ${segment.header.segmentId} holds ${model} vectors but index ${index.index} of ${index.collection} is ${index.model}`,
      );
    }
    if (vector !== undefined && dimension > 0 && dimension !== vector.length) {
      throw new Error(`segment ${segment.header.segmentId} has ${dimension}-d vectors, the query ${vector.length}-d`);
    }
  }
}

/** Ties a cursor to the query it was issued for. */
const fingerprint = (tenant: string, request: SearchRequest) =>
  createHash("sha256")
    .update(
      JSON.stringify([
        tenant,
        request.query,
        request.collection,
        request.mode,
        request.rerank,
        request.rerankTopN,
        request.rerankMethod ?? null,
        request.rerankWeight ?? null,
        request.filters ?? null,
      ]),
    )
    .digest("base64url")
    .slice(0, 12);

function toResult(candidate: Candidate, query: string): SearchResult {
  const { chunk, scores } = candidate;
  return {
    documentId: chunk.documentId,
    chunkId: chunk.chunkId,
    collection: chunk.collection,
    ...(chunk.filename ? { filename: chunk.filename } : {}),
    page: chunk.page,
    start: chunk.start,
    end: chunk.end,
    text: chunk.text,
    highlights: highlight(chunk.text, query).text,
    score: scores.combined ?? scores.fused,
    scores,
  };
}
