/**
 * Search at scale: builds one collection through the index code up to each requested size and measures
 * it as the search function would see it.
 *
 *   npm run bench:scale -- --chunks 12293,122930,1000000 [--dataset ../shared/eval/scifact] [--json FILE]
 *
 * Chunks: the dataset's chunks with the evaluation's cached embeddings, replicated under new ids with
 * perturbed vectors (see bench-scale-data.ts); without --dataset, synthetic chunks. The collection grows
 * batch by batch (`--batch` chunks each: the index stage's segment builder, S3 and the manifest in
 * DynamoDB); after a batch that leaves something to merge, a fresh process runs the compaction stage
 * (as the compaction function would), whose time and peak memory are recorded. At each size (once
 * compaction has caught up) the manifest is snapshotted and measured:
 *   - S3 bytes of the live segments;
 *   - cold first answer: a fresh process with an empty segment cache opens the collection from S3 and
 *     answers one hybrid query (k=10), fastest of `--cold-runs` processes; memory after it;
 *   - warm p50/p95/p99 per mode (k=10, one query at a time) once the segments are cached locally;
 *   - ANN recall: dense top-10 (and top-100) against exact search over every stored vector;
 *   - compaction: the slowest compaction step up to this size and the largest peak RSS of any;
 *   - with --merge-probe, one merge as large as the policy allows of this size's segments (the largest
 *     ones below the final size, up to `maxChunks`), run now with today's code in a fresh process, its
 *     result deleted: time and peak memory without building the collection again.
 * Built collections are cached: their segments stay on the local S3 server and the snapshots in
 * <cache>/bench-scale/<key>/, so a second run measures without building (`--rebuild` builds again).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, HeadBucketCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { Command } from "commander";
import { createJobsTable } from "../localstack/platform/jobs-table.ts";
import { cacheDir, repoRoot } from "../localstack/servers/paths.ts";
import { stackUp } from "../localstack/servers/stack.ts";
import { dynamoDocumentClient, s3Client } from "../shared/adapters/aws-clients.ts";
import { ManifestStore } from "../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../shared/adapters/object-store.ts";
import { type CompactionPolicy, DEFAULT_COMPACTION_POLICY, nextMerge } from "../shared/domain/compaction-policy.ts";
import { DEFAULT_ANN } from "../shared/domain/hybrid-search.ts";
import { FIRST_INDEX, type IndexManifest, LEGACY_MODEL_ID, type SegmentRef } from "../shared/domain/manifest.ts";
import { encodeBatchSegment, SEGMENT_FORMAT_VERSION, segmentRef } from "../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../shared/domain/types.ts";
import { segmentKey } from "../shared/stages/indexing.ts";
import { type BenchData, chunkAt, datasetData, syntheticData } from "./bench-scale-data.ts";

const list = (value: string) =>
  value.split(",").map((part) => {
    const n = Number(part.replaceAll("_", ""));
    if (!Number.isInteger(n) || n < 1) throw new Error(`--chunks: not a positive integer: ${part}`);
    return n;
  });

const options = new Command("bench:scale")
  .requiredOption("--chunks <n,...>", "collection sizes to measure (chunks)", list)
  .option("--dataset <dir>", "a BEIR dataset whose chunks (and cached embeddings) are replicated; synthetic without")
  .option("--json <file>", "also write the results as JSON")
  .option("--batch <n>", "chunks per ingestion batch (one segment each)", Number, 2048)
  .option("--cold-runs <n>", "fresh processes timed for the cold first answer (fastest reported)", Number, 3)
  .option("--queries <n>", "queries timed per mode when warm", Number, 200)
  .option("--recall-queries <n>", "queries whose dense results are compared with exact search", Number, 100)
  .option("--rebuild", "build the collection again even if a cached one exists")
  .option("--merge-probe", "also time one maximal merge of each size's segments (memory and time of compaction)")
  .parse()
  .opts<{
    chunks: number[];
    dataset?: string;
    json?: string;
    batch: number;
    coldRuns: number;
    queries: number;
    recallQueries: number;
    rebuild?: boolean;
    mergeProbe?: boolean;
  }>();

const log = (line: string) => process.stderr.write(`${line}\n`);
const TENANT = "bench";
const RESOURCE = "bench-scale";

interface Snapshot {
  chunks: number;
  manifest: IndexManifest;
  /** Slowest compaction step and largest peak RSS of any compaction process up to this size. */
  compaction: { seconds: number; peakRssMb: number; totalSeconds: number; merges: number; rewritesPerChunk: number };
  /** Building and writing one batch segment: slowest and mean seconds. */
  index: { maxSeconds: number; meanSeconds: number; batches: number };
}

/** Runs a worker in a fresh process; its last stdout line is its JSON result. */
function worker(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "scripts", "bench-scale-worker.ts"), ...args],
      {
        cwd: repoRoot,
        env: process.env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (data) => {
      out += data;
    });
    child.stderr.on("data", (data) => {
      err += data;
    });
    child.on("exit", (code) => {
      const last = out.trim().split("\n").at(-1);
      if (code === 0 && last) resolve(JSON.parse(last) as Record<string, unknown>);
      else reject(new Error(`worker ${args[0]} failed (${code}): ${err.trim().split("\n").slice(-8).join("\n")}`));
    });
  });
}

async function ensureResources(): Promise<void> {
  const s3 = s3Client();
  try {
    await s3.send(new HeadBucketCommand({ Bucket: RESOURCE }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: RESOURCE }));
  }
  const dynamodb = new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT });
  try {
    await dynamodb.send(new DescribeTableCommand({ TableName: RESOURCE }));
  } catch {
    await createJobsTable(dynamodb, RESOURCE);
  }
}

async function snapshotsUsable(snapshots: Snapshot[]): Promise<boolean> {
  const s3 = s3Client();
  for (const snapshot of snapshots) {
    for (const ref of snapshot.manifest.segments) {
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: RESOURCE, Key: ref.key }));
        if (head.ContentLength !== ref.bytes) return false;
      } catch {
        return false;
      }
    }
  }
  return true;
}

/** Grows a fresh collection to each size, compacting as it goes; returns the snapshots. */
async function build(data: BenchData, sizes: number[], policy: CompactionPolicy, dir: string): Promise<Snapshot[]> {
  const collection = `c${Date.now().toString(36)}`;
  const manifests = new ManifestStore(dynamoDocumentClient(), RESOURCE);
  const objects = new ObjectStore(s3Client());
  const compaction = { seconds: 0, peakRssMb: 0, totalSeconds: 0, merges: 0 };
  let written = 0;
  const index = { maxSeconds: 0, totalSeconds: 0, batches: 0 };
  const snapshots: Snapshot[] = [];
  const began = performance.now();
  let total = 0;
  for (const size of sizes) {
    while (total < size) {
      const count = Math.min(options.batch, size - total);
      const started = performance.now();
      const chunks: EmbeddedChunk[] = [];
      const docs = new Map<string, DocumentInfo>();
      for (let i = total; i < total + count; i += 1) {
        const { chunk, info } = chunkAt(data, i, collection);
        chunks.push(chunk);
        docs.set(info.documentId, info);
      }
      const segmentId = `b${total.toString(36)}`;
      // bench:scale:data embeds with the default (legacy) model.
      const encoded = encodeBatchSegment(segmentId, chunks, docs, { model: LEGACY_MODEL_ID });
      const key = segmentKey(TENANT, collection, segmentId);
      await objects.write(RESOURCE, key, encoded.parts);
      await manifests.addSegment(TENANT, collection, segmentRef(encoded, key), {
        index: FIRST_INDEX,
        model: LEGACY_MODEL_ID,
      });
      const seconds = (performance.now() - started) / 1000;
      index.maxSeconds = Math.max(index.maxSeconds, seconds);
      index.totalSeconds += seconds;
      index.batches += 1;
      total += count;
      written += count;
      const manifest = await manifests.get(TENANT, collection);
      if (nextMerge(manifest.segments, policy) !== undefined) {
        const run = (await worker(["compact", RESOURCE, RESOURCE, TENANT, collection, JSON.stringify(policy)])) as {
          seconds: number;
          peakRssMb: number;
          merges: { ms: number; chunks: number }[];
        };
        for (const merge of run.merges) {
          compaction.seconds = Math.max(compaction.seconds, merge.ms / 1000);
          written += merge.chunks;
        }
        compaction.merges += run.merges.length;
        compaction.peakRssMb = Math.max(compaction.peakRssMb, run.peakRssMb);
        compaction.totalSeconds += run.seconds;
      }
      if (index.batches % 20 === 0 || total === size) {
        log(
          `built ${total} chunks: ${manifest.segments.length} segments, ${compaction.merges} merges, ` +
            `${((performance.now() - began) / 1000).toFixed(0)} s`,
        );
      }
    }
    const manifest = await manifests.get(TENANT, collection);
    const snapshot: Snapshot = {
      chunks: size,
      manifest,
      compaction: { ...compaction, rewritesPerChunk: Math.round(((written - total) / total) * 100) / 100 },
      index: {
        maxSeconds: round(index.maxSeconds, 2),
        meanSeconds: round(index.totalSeconds / index.batches, 3),
        batches: index.batches,
      },
    };
    writeFileSync(join(dir, `snapshot-${size}.json`), JSON.stringify(snapshot));
    snapshots.push(snapshot);
  }
  // Objects of merged-away segments no snapshot uses.
  const kept = new Set(snapshots.flatMap((snapshot) => snapshot.manifest.segments.map((ref) => ref.key)));
  for (const object of await objects.list(RESOURCE, `index/${TENANT}/${collection}/`)) {
    if (!kept.has(object.key)) await objects.delete(RESOURCE, object.key);
  }
  return snapshots;
}

async function measure(data: BenchData, snapshot: Snapshot) {
  const jobFile = join(mkdtempSync(join(tmpdir(), "bench-scale-")), "job.json");
  const base = {
    bucket: RESOURCE,
    manifest: snapshot.manifest,
    queries: data.queries,
    warmQueries: options.queries,
    recallQueries: options.recallQueries,
  };
  const colds: Record<string, unknown>[] = [];
  for (let run = 0; run < options.coldRuns; run += 1) {
    const cache = mkdtempSync(join(tmpdir(), "bench-scale-cache-"));
    writeFileSync(jobFile, JSON.stringify({ ...base, mode: "cold", cacheDir: cache }));
    colds.push(await worker(["search", jobFile]));
    rmSync(cache, { recursive: true, force: true });
  }
  const fastest = colds.reduce((a, b) => ((a.coldFirstAnswerMs as number) <= (b.coldFirstAnswerMs as number) ? a : b));
  const freshChunks: EmbeddedChunk[] = [];
  const freshDocs: [string, DocumentInfo][] = [];
  for (let i = 0; i < 800; i += 1) {
    const { chunk, info } = chunkAt(data, i, snapshot.manifest.collection);
    freshChunks.push({
      ...chunk,
      chunkId: `fresh-${chunk.chunkId}`,
      documentId: `fresh-${chunk.documentId}`,
      // A word only the fresh batch has (its texts are otherwise the originals'): the check query finds it.
      text: `freshbatch ${chunk.text}`,
      vector: Array.from(chunk.vector),
    });
    freshDocs.push([`fresh-${info.documentId}`, { ...info, documentId: `fresh-${info.documentId}` }]);
  }
  const cache = mkdtempSync(join(tmpdir(), "bench-scale-cache-"));
  writeFileSync(
    jobFile,
    JSON.stringify({ ...base, mode: "full", cacheDir: cache, fresh: { chunks: freshChunks, docs: freshDocs } }),
  );
  const full = await worker(["search", jobFile]);
  rmSync(cache, { recursive: true, force: true });
  let maximalMerge: Record<string, unknown> | undefined;
  const probe = options.mergeProbe ? mergeProbe(snapshot.manifest.segments, DEFAULT_COMPACTION_POLICY) : [];
  if (probe.length > 1) {
    writeFileSync(jobFile, JSON.stringify({ refs: probe, model: snapshot.manifest.model }));
    maximalMerge = await worker(["merge", RESOURCE, jobFile]);
  }
  const s3Bytes = snapshot.manifest.segments.reduce((sum, ref) => sum + ref.bytes, 0);
  return {
    chunks: snapshot.chunks,
    s3Bytes,
    coldFirstAnswerMs: round(fastest.coldFirstAnswerMs as number),
    coldRunsMs: colds.map((cold) => round(cold.coldFirstAnswerMs as number)),
    coldBytesRead: fastest.coldBytesRead as number,
    rssMb: fastest.rssMb as number,
    heapMb: fastest.heapMb as number,
    latencyMs: full.latencyMs as Record<string, { p50: number; p95: number; p99: number }>,
    cpuMs: full.cpuMs as Record<string, { p50: number; p95: number; p99: number }>,
    stageMeanMs: full.stages,
    warmRssMb: full.warmRssMb,
    warmPeakRssMb: full.warmPeakRssMb,
    cacheFillSeconds: full.cacheFillSeconds,
    annRecall: full.annRecall as number,
    annRecall100: full.annRecall100,
    annChunks: full.annChunks,
    freshSegmentMs: full.freshSegmentMs,
    segments: snapshot.manifest.segments.length,
    compaction: {
      seconds: round(snapshot.compaction.seconds, 1),
      peakRssMb: snapshot.compaction.peakRssMb,
      totalSeconds: round(snapshot.compaction.totalSeconds, 0),
      merges: snapshot.compaction.merges,
      rewritesPerChunk: snapshot.compaction.rewritesPerChunk,
    },
    index: snapshot.index,
    ...(maximalMerge === undefined
      ? {}
      : {
          maximalMerge: {
            chunks: maximalMerge.chunks as number,
            sources: maximalMerge.sources as number,
            seconds: round(maximalMerge.seconds as number),
            peakRssMb: maximalMerge.peakRssMb as number,
          },
        }),
  };
}

/** The largest merge the policy could make of these segments: the biggest non-final ones, up to `maxChunks`. */
function mergeProbe(segments: readonly SegmentRef[], policy: CompactionPolicy): SegmentRef[] {
  const open = segments.filter((ref) => ref.chunks * 2 <= policy.maxChunks).sort((a, b) => b.chunks - a.chunks);
  const picked: SegmentRef[] = [];
  let sum = 0;
  for (const ref of open) {
    if (picked.length === policy.factor || sum + ref.chunks > policy.maxChunks) break;
    picked.push(ref);
    sum += ref.chunks;
  }
  return picked;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  const sizes = [...new Set(options.chunks)].sort((a, b) => a - b);
  Object.assign(process.env, (await stackUp(log)).env);
  await ensureResources();
  const data = options.dataset ? await datasetData(options.dataset, log) : syntheticData();
  log(`data: ${data.name}, ${data.base.length} base chunks, ${data.queries.length} queries`);
  const policy = { ...DEFAULT_COMPACTION_POLICY };
  const key = createHash("sha1")
    .update(JSON.stringify([data.name, options.batch, policy, SEGMENT_FORMAT_VERSION, DEFAULT_ANN, 2]))
    .digest("hex")
    .slice(0, 12);
  const dir = join(cacheDir, "bench-scale", key);
  mkdirSync(dir, { recursive: true });
  const cached = sizes.map((size) => join(dir, `snapshot-${size}.json`));
  let snapshots: Snapshot[];
  if (!options.rebuild && cached.every(existsSync)) {
    snapshots = cached.map((file) => JSON.parse(readFileSync(file, "utf8")) as Snapshot);
    if (!(await snapshotsUsable(snapshots))) snapshots = await build(data, sizes, policy, dir);
    else log(`using the collection built before (${dir})`);
  } else snapshots = await build(data, sizes, policy, dir);
  const results = [];
  for (const snapshot of snapshots) {
    log(`measuring ${snapshot.chunks} chunks (${snapshot.manifest.segments.length} segments)`);
    const result = await measure(data, snapshot);
    results.push(result);
    log(JSON.stringify(result));
  }
  const header = [
    "chunks",
    "segments",
    "S3 MB",
    "cold s",
    "cold MB read",
    "RSS MB",
    "bm25 p50/p95/p99",
    "dense p50/p95/p99",
    "hybrid p50/p95/p99",
    "ANN R@10",
    "compaction s, MB",
    ...(options.mergeProbe ? ["merge probe: chunks, s, MB"] : []),
  ];
  const rows = results.map((r) => [
    r.chunks.toLocaleString("en"),
    String(r.segments),
    (r.s3Bytes / 1e6).toFixed(0),
    (r.coldFirstAnswerMs / 1000).toFixed(2),
    (r.coldBytesRead / 1e6).toFixed(1),
    String(r.rssMb),
    ...(["bm25", "dense", "hybrid"] as const).map((mode) => {
      const l = r.latencyMs[mode] as { p50: number; p95: number; p99: number };
      return `${l.p50} / ${l.p95} / ${l.p99}`;
    }),
    String(r.annRecall),
    `${r.compaction.seconds}, ${r.compaction.peakRssMb}`,
    ...(options.mergeProbe
      ? [r.maximalMerge ? `${r.maximalMerge.chunks}, ${r.maximalMerge.seconds}, ${r.maximalMerge.peakRssMb}` : "—"]
      : []),
  ]);
  console.log(`\n| ${header.join(" | ")} |\n|${header.map(() => " --- |").join("")}`);
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
  if (options.json) {
    const sizesJson = results.map((r) => ({
      chunks: r.chunks,
      s3Bytes: r.s3Bytes,
      coldFirstAnswerMs: r.coldFirstAnswerMs,
      rssMb: r.rssMb,
      latencyMs: r.latencyMs,
      annRecall: r.annRecall,
      compaction: { seconds: r.compaction.seconds, peakRssMb: r.compaction.peakRssMb },
      details: r,
    }));
    writeFileSync(
      options.json,
      `${JSON.stringify({ dataset: data.name, batch: options.batch, policy, sizes: sizesJson }, null, 2)}\n`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
