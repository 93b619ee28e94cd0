import { createHash } from "node:crypto";
import { z } from "zod";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { highlight } from "../domain/highlight.ts";
import { applyRerank, type Candidate, decodeCursor, paginate, searchSegments } from "../domain/hybrid-search.ts";
import { hiddenRevisions, type Manifest, type SegmentRef } from "../domain/manifest.ts";
import { decodeSegment, type Segment } from "../domain/segment.ts";
import type { SegmentBlobs } from "./ports.ts";
import { DEFAULT_COLLECTION } from "./upload.ts";

/** POST /search: the request, validated. */
export const searchRequest = z.object({
  query: z.string().trim().min(1, "query must not be empty").max(1000, "query is over 1,000 characters"),
  collection: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
    .default(DEFAULT_COLLECTION),
  k: z.number().int().min(1).max(100).default(10),
  mode: z.enum(["hybrid", "dense", "bm25"]).default("hybrid"),
  rerank: z.boolean().default(true),
  rerankTopN: z.number().int().min(1).max(200).default(20),
  fusion: z.enum(["rrf", "weighted"]).default("rrf"),
  weights: z.object({ bm25: z.number().min(0).optional(), dense: z.number().min(0).optional() }).optional(),
  filters: z
    .object({
      documentIds: z.array(z.string().min(1)).max(1000).optional(),
      contentTypes: z.array(z.string().min(1)).max(20).optional(),
      metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    })
    .strict()
    .optional(),
  cursor: z.string().max(512).optional(),
});
export type SearchRequest = z.infer<typeof searchRequest>;

export interface SearchResult {
  documentId: string;
  chunkId: string;
  collection: string;
  filename?: string;
  page: number;
  start: number;
  end: number;
  text: string;
  /** The chunk text, HTML-escaped, with the query's terms in <mark>…</mark>. */
  highlights: string;
  score: number;
  scores: { bm25?: number; dense?: number; fused: number; rerank?: number };
}

export interface SearchResponse {
  results: SearchResult[];
  nextCursor?: string;
  timings: Record<string, number>;
  segments: number;
}

export interface SearchDeps {
  manifests: Pick<ManifestStore, "get">;
  blobs: Pick<SegmentBlobs, "read">;
  embed: (text: string) => Promise<Float32Array>;
  /** Cross-encoder scores; undefined when no reranker model is configured. */
  rerank?: (query: string, passages: string[]) => Promise<number[]>;
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
    const rerank = request.rerank && this.deps.rerank ? this.deps.rerank : undefined;
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
    let ranked: Candidate[] = fused;
    if (rerank && fused.length > 0) {
      const top = fused.slice(0, request.rerankTopN);
      const scores = await time("rerank", () =>
        rerank(
          request.query,
          top.map((candidate) => candidate.chunk.text),
        ),
      );
      ranked = [...applyRerank(top, scores), ...fused.slice(request.rerankTopN)];
    }
    const page = paginate(ranked, request.k, request.cursor, queryPrint);
    const results = await time("highlight", () => page.items.map((candidate) => toResult(candidate, request.query)));
    timings.total = Math.round((performance.now() - began) * 100) / 100;
    return { results, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}), timings, segments: segments.length };
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
    score: scores.rerank ?? scores.fused,
    scores,
  };
}
