import { createHash } from "node:crypto";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import type { SearchRequest, SearchResponse, SearchResult } from "../api/schemas.ts";
import { highlight } from "../domain/highlight.ts";
import { type Candidate, decodeCursor, paginate, searchSegments } from "../domain/hybrid-search.ts";
import { hiddenRevisions, type Manifest, type SegmentRef } from "../domain/manifest.ts";
import {
  type CrossEncoderPort,
  RERANK_DEFAULTS,
  RERANK_LIMITS,
  type RerankMethod,
  type RerankReport,
  type RerankSettings,
  rerankFused,
} from "../domain/rerank.ts";
import { decodeSegment, type Segment } from "../domain/segment.ts";
import type { SegmentBlobs } from "./ports.ts";

export {
  type SearchRequest,
  type SearchResponse,
  type SearchResult,
  searchRequest,
} from "../api/schemas.ts";

export interface SearchDeps {
  manifests: Pick<ManifestStore, "get">;
  blobs: Pick<SegmentBlobs, "read">;
  embed: (text: string) => Promise<Float32Array>;
  /** The cross-encoder; undefined when none is installed. */
  reranker?: CrossEncoderPort;
  /** Why there is no cross-encoder, for the response (default: "no cross-encoder on the server"). */
  rerankUnavailable?: string;
  /** Server defaults for what a request may leave out (env RERANK_METHOD, RERANK_WEIGHT, RERANK_DEADLINE_MS). */
  rerankDefaults?: Partial<{ method: RerankMethod; weight: number; deadlineMs: number }>;
}

/**
 * Hybrid search over a tenant's collection. Segments are immutable, so each is fetched and
 * decoded once per execution environment and kept; every request reads the manifest (one
 * consistent read) and loads only the segments it added since.
 */
export class SearchService {
  /** Decoded segments by segment id, per tenant/collection. */
  private readonly cache = new Map<string, Map<string, Segment>>();

  constructor(private readonly deps: SearchDeps) {}

  async search(tenant: string, request: SearchRequest): Promise<SearchResponse> {
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
    // The manifest read goes out first; the query is embedded while DynamoDB answers.
    const manifestRead = time("manifest", () => this.deps.manifests.get(tenant, request.collection));
    const embedding = request.mode === "bm25" ? undefined : time("embed", () => this.deps.embed(request.query));
    // A failed embedding is thrown below; this only keeps a manifest error from leaving it unhandled.
    embedding?.catch(() => undefined);
    const manifest = await manifestRead;
    const segments = await time("load", () => this.load(manifest));
    const vector = await embedding;
    const wanted = Math.max(request.rerankTopN, request.k) + offset;
    const fused = await time("retrieve", () =>
      searchSegments(segments, {
        text: request.query,
        ...(vector ? { vector } : {}),
        k: wanted,
        mode: request.mode,
        fusion: request.fusion,
        ...(request.weights ? { weights: request.weights } : {}),
        ...(request.filters ? { filters: request.filters } : {}),
        // Hook of the reliability work: revisions whose job has not completed are masked like tombstones.
        tombstones: hiddenRevisions(manifest),
      }),
    );
    const { ranked, report: rerank } = await this.rerank(request, fused, time);
    const page = paginate(ranked, request.k, request.cursor, queryPrint);
    const results = await time("highlight", () => page.items.map((candidate) => toResult(candidate, request.query)));
    timings.total = Math.round((performance.now() - began) * 100) / 100;
    return {
      results,
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      timings,
      segments: segments.length,
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

  /**
   * The manifest's segments, decoded; only those not seen before are fetched. Segments the
   * manifest no longer lists (merged by compaction) are dropped, so a warm container holds only
   * what its collections use.
   */
  private async load(manifest: Manifest): Promise<Segment[]> {
    const key = `${manifest.tenant}/${manifest.collection}`;
    const cached = this.cache.get(key) ?? new Map<string, Segment>();
    this.cache.set(key, cached);
    const live = new Set(manifest.segments.map((ref) => ref.id));
    for (const id of cached.keys()) if (!live.has(id)) cached.delete(id);
    const missing = manifest.segments.filter((ref) => !cached.has(ref.id));
    await Promise.all(
      missing.map(async (ref: SegmentRef) => cached.set(ref.id, decodeSegment(await this.deps.blobs.read(ref.key)))),
    );
    return manifest.segments.map((ref) => cached.get(ref.id) as Segment);
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
