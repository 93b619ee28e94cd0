/**
 * The child processes of `bench:scale` (each a fresh process, as a fresh Lambda environment is):
 *   compact <table> <bucket> <tenant> <collection>   one compaction run, as the compaction function does it
 *   search <job.json>                               a search container: cold first answer, then (with
 *                                                   "full") warm latency, ANN recall and a fresh segment
 *   merge <bucket> <segments.json>                  one merge of those segments as compaction does it
 *                                                   (opened by byte range, merged, written to S3), whose
 *                                                   object is deleted afterwards: time and peak memory
 * Each prints one JSON line on stdout.
 */
import { readFileSync } from "node:fs";
import { dynamoDocumentClient, s3Client } from "../shared/adapters/aws-clients.ts";
import { ManifestStore } from "../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../shared/adapters/object-store.ts";
import { SegmentFiles } from "../shared/adapters/segment-files.ts";
import { type CompactionPolicy, DEFAULT_COMPACTION_POLICY } from "../shared/domain/compaction-policy.ts";
import type { IndexManifest, SegmentRef } from "../shared/domain/manifest.ts";
import {
  type ByteSource,
  encodeBatchSegment,
  mergeSegmentParts,
  Segment,
  segmentRef,
} from "../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../shared/domain/types.ts";
import { FlatIndex, normalizeInto } from "../shared/domain/vector-index.ts";
import { compactCollection } from "../shared/stages/compaction.ts";
import { SearchService, searchRequest } from "../shared/stages/search.ts";
import { percentiles } from "./retrieval-metrics.ts";

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

async function compact(table: string, bucket: string, tenant: string, collection: string, policyJson: string) {
  const started = performance.now();
  const objects = new ObjectStore(s3Client());
  const files = new SegmentFiles(objects, bucket);
  const merges: { ms: number; chunks: number; sources: number }[] = [];
  const policy: CompactionPolicy = {
    ...DEFAULT_COMPACTION_POLICY,
    ...(JSON.parse(policyJson) as Partial<CompactionPolicy>),
  };
  const result = await compactCollection(tenant, collection, `bench-${process.pid}`, {
    manifests: new ManifestStore(dynamoDocumentClient(), table),
    blobs: {
      write: (key, body) => objects.write(bucket, key, body),
      read: (key) => objects.read(bucket, key),
      source: (key, size) => files.source(key, size),
    },
    policy,
    log: (_message, details) => {
      const merged = details.merged as { chunks: number };
      merges.push({ ms: details.ms as number, chunks: merged.chunks, sources: (details.sources as unknown[]).length });
    },
  });
  return { ...result, seconds: (performance.now() - started) / 1000, peakRssMb: peakRssMb(), merges };
}

/** One merge of `refs`, as the compaction stage runs it, without touching the manifest. */
async function merge(bucket: string, refs: SegmentRef[], model: string | undefined) {
  const started = performance.now();
  const objects = new ObjectStore(s3Client());
  const files = new SegmentFiles(objects, bucket);
  const segments = await Promise.all(
    refs.map((ref) => Segment.open(files.source(ref.key, ref.bytes), { groups: ["docs", "ids", "terms"] })),
  );
  const encoded = await mergeSegmentParts(segments, new Set(), `merge-probe-${process.pid}`, {
    ...(model === undefined ? {} : { model }),
  });
  const key = `bench-merge-probe/${process.pid}.seg`;
  await objects.write(bucket, key, encoded.parts);
  await objects.delete(bucket, key);
  return {
    chunks: encoded.header.chunkCount,
    sources: refs.length,
    seconds: (performance.now() - started) / 1000,
    peakRssMb: peakRssMb(),
  };
}

interface SearchJob {
  mode: "cold" | "full";
  bucket: string;
  cacheDir: string;
  manifest: IndexManifest;
  queries: { text: string; vector: number[] }[];
  /** Queries timed per retrieval mode when warm. */
  warmQueries: number;
  /** Queries whose dense results are compared with exact search. */
  recallQueries: number;
  /** A batch to add afterwards, to time how fast a fresh segment is searchable. */
  fresh?: { chunks: EmbeddedChunk[]; docs: [string, DocumentInfo][] };
}

async function search(job: SearchJob) {
  const objects = new ObjectStore(s3Client());
  const files = new SegmentFiles(objects, job.bucket, { cacheDir: job.cacheDir });
  let manifest = job.manifest;
  const vectors = new Map(job.queries.map((query) => [query.text, Float32Array.from(query.vector)]));
  const service = new SearchService({
    // The manifest read and the query embedding are left out of the timings (as in the baseline).
    manifests: { get: async () => manifest },
    blobs: {
      read: (key) => objects.read(job.bucket, key),
      // Counted: the bytes a cold first answer reads (from S3) are what its time and memory grow with.
      source: (key, size) => counted(files.source(key, size)),
      prefetch: (key, size) => files.prefetch(key, size),
      retain: (keys) => files.retain(keys),
    },
    embed: async (text) => vectors.get(text) ?? (vectors.values().next().value as Float32Array),
  });
  const request = (query: string, mode: "bm25" | "dense" | "hybrid", k = 10) =>
    searchRequest.parse({ query, collection: manifest.collection, k, mode, rerank: false });
  let bytesRead = 0;
  function counted(source: ByteSource): ByteSource {
    return {
      size: source.size,
      get local() {
        return source.local;
      },
      read: async (ranges) => {
        const parts = await source.read(ranges);
        for (const part of parts) bytesRead += part.byteLength;
        return parts;
      },
    };
  }
  const first = job.queries[0] as SearchJob["queries"][number];
  let started = performance.now();
  await service.search(manifest.tenant, request(first.text, "hybrid"));
  const coldFirstAnswerMs = performance.now() - started;
  const afterLoad = process.memoryUsage();
  const cold = {
    coldFirstAnswerMs,
    coldBytesRead: bytesRead,
    rssMb: mb(afterLoad.rss),
    heapMb: mb(afterLoad.heapUsed),
  };
  if (job.mode === "cold") return cold;

  // The background downloads to the cache directory, as a warm container has them.
  started = performance.now();
  await Promise.all(manifest.segments.map((ref) => files.prefetch(ref.key, ref.bytes)));
  const cacheFillSeconds = (performance.now() - started) / 1000;

  const latencyMs: Record<string, { p50: number; p95: number; p99: number }> = {};
  const cpuMs: Record<string, { p50: number; p95: number; p99: number }> = {};
  const stages: Record<string, Record<string, number>> = {};
  const queries = job.queries.slice(0, job.warmQueries);
  for (const mode of ["bm25", "dense", "hybrid"] as const) {
    // One pass to warm the page cache and JIT, then the timed pass.
    for (const query of queries.slice(0, 20)) await service.search(manifest.tenant, request(query.text, mode));
    const times: number[] = [];
    // CPU time per search: on a busy machine the steadier figure (wall time includes waiting for a core).
    const cpuTimes: number[] = [];
    const totals: Record<string, number> = {};
    for (const query of queries) {
      const began = performance.now();
      const cpu = process.cpuUsage();
      const answer = await service.search(manifest.tenant, request(query.text, mode));
      times.push(performance.now() - began);
      const used = process.cpuUsage(cpu);
      cpuTimes.push((used.user + used.system) / 1000);
      for (const [stage, ms] of Object.entries(answer.timings)) totals[stage] = (totals[stage] ?? 0) + ms;
    }
    const { p50, p95, p99 } = percentiles(times);
    latencyMs[mode] = { p50: round(p50), p95: round(p95), p99: round(p99) };
    const cpu = percentiles(cpuTimes);
    cpuMs[mode] = { p50: round(cpu.p50), p95: round(cpu.p95), p99: round(cpu.p99) };
    stages[mode] = Object.fromEntries(Object.entries(totals).map(([stage, ms]) => [stage, round(ms / queries.length)]));
  }
  const warmRssMb = mb(process.memoryUsage().rss);
  const warmPeakRssMb = peakRssMb();

  // ANN recall: the service's dense results against exact search over every stored vector.
  const recallSet = job.queries.slice(0, job.recallQueries);
  const annTop: string[][] = [];
  for (const query of recallSet) {
    const answer = await service.search(manifest.tenant, request(query.text, "dense", 100));
    annTop.push(answer.results.map((result) => result.chunkId));
  }
  const exact = await exactTop(manifest, files, recallSet, 100);
  const recallAt = (k: number) =>
    recallSet.reduce((sum, _, i) => {
      const truth = new Set((exact[i] as string[]).slice(0, k));
      return sum + (annTop[i] as string[]).slice(0, k).filter((id) => truth.has(id)).length / Math.max(1, truth.size);
    }, 0) / Math.max(1, recallSet.length);
  const annSegments = (
    await Promise.all(
      manifest.segments
        .map((ref) => files.source(ref.key, ref.bytes))
        .map((source) => Segment.open(source, { groups: ["terms"] })),
    )
  )
    .filter((segment) => segment.header.dense.kind === "ivfpq")
    .reduce((sum, segment) => sum + segment.size, 0);

  // A fresh batch: how long until a search answers from it.
  let freshSegmentMs: number | undefined;
  if (job.fresh !== undefined) {
    const freshId = `bench-fresh-${process.pid}`;
    const encoded = encodeBatchSegment(freshId, job.fresh.chunks, new Map(job.fresh.docs));
    const key = `index/${manifest.tenant}/${manifest.collection}/segments/${freshId}.seg`;
    await objects.write(job.bucket, key, encoded.parts);
    manifest = {
      ...manifest,
      segments: [...manifest.segments, segmentRef(encoded, key)],
    };
    const text = job.fresh.chunks[0]?.text ?? "";
    started = performance.now();
    const answer = await service.search(manifest.tenant, request(text.split(" ").slice(0, 8).join(" "), "hybrid"));
    freshSegmentMs = performance.now() - started;
    if (!answer.results.some((result) => result.chunkId.startsWith("fresh-")))
      throw new Error("the fresh segment was not searched");
    await objects.delete(job.bucket, key);
  }
  return {
    ...cold,
    cacheFillSeconds: round(cacheFillSeconds, 2),
    latencyMs,
    cpuMs,
    stages,
    warmRssMb,
    warmPeakRssMb,
    annRecall: round(recallAt(10), 4),
    annRecall100: round(recallAt(100), 4),
    annChunks: annSegments,
    ...(freshSegmentMs === undefined ? {} : { freshSegmentMs: round(freshSegmentMs) }),
  };
}

/** Exact top-k chunk ids by inner product over every segment's stored vectors (faiss flat, a segment at a time). */
async function exactTop(
  manifest: IndexManifest,
  files: SegmentFiles,
  queries: { vector: number[] }[],
  k: number,
): Promise<string[][]> {
  const best: { id: string; score: number }[][] = queries.map(() => []);
  const normalised = queries.map((query) => normalizeInto(query.vector, new Float32Array(query.vector.length)));
  for (const ref of manifest.segments) {
    const segment = await Segment.open(files.source(ref.key, ref.bytes), { groups: ["ids"] });
    if (segment.size === 0) continue;
    const { rows, ordinals } = await segment.storedVectors();
    const index = FlatIndex.fromVectors(rows, segment.header.dimension);
    normalised.forEach((q, i) => {
      for (const hit of index.search(q, k)) {
        const ordinal = ordinals === undefined ? hit.ordinal : (ordinals[hit.ordinal] as number);
        (best[i] as { id: string; score: number }[]).push({ id: segment.chunkIds.id(ordinal), score: hit.score });
      }
    });
  }
  return best.map((hits) =>
    hits
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
      .slice(0, k)
      .map((hit) => hit.id),
  );
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  const [command, ...args] = process.argv.slice(2);
  let result: unknown;
  if (command === "compact") {
    const [table, bucket, tenant, collection, policy] = args as [string, string, string, string, string];
    result = await compact(table, bucket, tenant, collection, policy);
  } else if (command === "merge") {
    const [bucket, file] = args as [string, string];
    const job = JSON.parse(readFileSync(file, "utf8")) as { refs: SegmentRef[]; model?: string };
    result = await merge(bucket, job.refs, job.model);
  } else if (command === "search") {
    result = await search(JSON.parse(readFileSync(args[0] as string, "utf8")) as SearchJob);
  } else throw new Error(`unknown command ${command}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
