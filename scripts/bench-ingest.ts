/**
 * Ingestion throughput of the running platform (start it first with `npm start`):
 *   npm run bench:ingest -- --dataset ../shared/eval/scifact [--limit N] [--endpoint URL]
 *
 * Uploads every document of a BEIR corpus as a text file through the API and its presigned
 * uploads, waits for every job, and prints documents per minute, chunks per second and the time
 * spent in each stage; then, in the same run on the same machine, the raw throughput of the
 * embedder alone (chunks per second through onnxruntime, same chunker, same batch size).
 */
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Command } from "commander";
import pMap from "p-map";
import { DataDistillerClient, type JobStatus } from "../cli/api-client.ts";
import { ensureModels } from "../layers/models.ts";
import { mintToken } from "../localstack/runtime/local-jwt.ts";
import { Embedder } from "../shared/embedder.ts";
import { percentiles } from "../shared/metrics.ts";
import { modelPaths } from "../shared/models.ts";
import { documentSplitter, embedderTokenCounter } from "../shared/splitter.ts";

const options = new Command("bench:ingest")
  .requiredOption("--dataset <dir>", "a BEIR-format dataset (corpus.jsonl)")
  .option("--endpoint <url>", "the API", "http://127.0.0.1:3000")
  .option("--token <token>", "bearer token (default: minted by the local issuer)")
  .option("--limit <n>", "only the first N documents", (value) => Number(value))
  .option("--concurrency <n>", "uploads in flight", (value) => Number(value), 16)
  .parse()
  .opts<{ dataset: string; endpoint: string; token?: string; limit?: number; concurrency: number }>();

async function main() {
  const docs: { id: string; text: string }[] = [];
  for await (const line of createInterface({ input: createReadStream(join(options.dataset, "corpus.jsonl")) })) {
    if (!line.trim()) continue;
    const doc = JSON.parse(line) as { _id: string; title?: string; text?: string };
    docs.push({ id: doc._id, text: [doc.title, doc.text].filter(Boolean).join("\n\n") });
    if (options.limit && docs.length >= options.limit) break;
  }
  const token = options.token ?? (await mintToken({ tenant: "bench", audience: "datadistiller" }));
  const api = new DataDistillerClient(options.endpoint, token);
  const collection = `bench-${Date.now().toString(36)}`;

  console.log(`ingesting ${docs.length} documents into ${collection} at ${options.endpoint}`);
  const began = Date.now();
  const jobIds = await pMap(
    docs,
    async (doc) => {
      const ticket = await api.ingest(
        { filename: `${doc.id}.txt`, contentType: "text/plain", bytes: new TextEncoder().encode(doc.text) },
        { collection },
      );
      return ticket.jobId;
    },
    { concurrency: options.concurrency },
  );
  const uploaded = Date.now();
  // Follow the jobs through the tenant's listing (100 a page, newest first) rather than one GET
  // per job, so the benchmark's own polling stays a small part of what it measures.
  const ours = new Set(jobIds);
  const pending = new Set(jobIds);
  const jobs: JobStatus[] = [];
  while (pending.size > 0) {
    let cursor: string | undefined;
    let seen = 0;
    do {
      const page = await api.listJobs({ limit: 100, ...(cursor ? { cursor } : {}) });
      for (const job of page.jobs) {
        if (!ours.has(job.jobId)) continue;
        seen++;
        if (pending.has(job.jobId) && (job.state === "COMPLETED" || job.state === "FAILED")) {
          pending.delete(job.jobId);
          jobs.push(job);
        }
      }
      cursor = page.cursor;
    } while (cursor && seen < jobIds.length);
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  const failed = jobs.filter((job) => job.state !== "COMPLETED");
  const chunks = jobs.reduce((sum, job) => sum + job.counts.chunksTotal, 0);
  const lastDone = Math.max(...jobs.map((job) => Date.parse(job.stages.COMPLETED ?? job.stages.FAILED ?? "")));
  const pipelineSeconds = (lastDone - began) / 1000;

  const stage = (from: keyof JobStatus["stages"], to: keyof JobStatus["stages"]) =>
    percentiles(
      jobs
        .filter((job) => job.stages[from] && job.stages[to])
        .map((job) => Date.parse(job.stages[to] ?? "") - Date.parse(job.stages[from] ?? "")),
    );
  console.log(`\ndocuments: ${jobs.length} (${failed.length} failed), chunks: ${chunks}`);
  console.log(
    `uploads sent in ${((uploaded - began) / 1000).toFixed(1)} s; all jobs finished ${pipelineSeconds.toFixed(1)} s after the first upload`,
  );
  console.log(
    `end to end: ${((jobs.length / pipelineSeconds) * 60).toFixed(0)} documents/min, ${(chunks / pipelineSeconds).toFixed(1)} chunks/s`,
  );
  for (const [name, from, to] of [
    ["upload → UPLOADED", "PENDING_UPLOAD", "UPLOADED"],
    ["UPLOADED → split done (EMBEDDING)", "UPLOADED", "EMBEDDING"],
    ["EMBEDDING → INDEXING", "EMBEDDING", "INDEXING"],
    ["INDEXING → COMPLETED", "INDEXING", "COMPLETED"],
    ["whole job", "PENDING_UPLOAD", "COMPLETED"],
  ] as const) {
    const { p50, p95 } = stage(from, to);
    console.log(`  ${name.padEnd(36)} p50 ${p50.toFixed(0).padStart(7)} ms   p95 ${p95.toFixed(0).padStart(7)} ms`);
  }
  for (const job of failed.slice(0, 5)) console.log(`  FAILED ${job.filename}: ${job.error}`);

  // The embedder alone, on the same machine, same chunker and batch size as the embed function.
  const models = modelPaths(await ensureModels());
  const embedder = await Embedder.load(models.embedder);
  const split = documentSplitter(embedderTokenCounter(embedder.tokenizer));
  const sample: string[] = [];
  for (const doc of docs.slice(0, 400)) {
    for (const chunk of await split(doc.id, new TextEncoder().encode(doc.text), "text/plain")) sample.push(chunk.text);
  }
  const rawBegan = performance.now();
  await embedder.embed(sample);
  const raw = sample.length / ((performance.now() - rawBegan) / 1000);
  // The local embed environments run one single-threaded session each (see the runtime): the
  // same embedder on one thread, for comparison.
  const single = await Embedder.load(models.embedder, { threads: 1 });
  const singleBegan = performance.now();
  await single.embed(sample);
  const perThread = sample.length / ((performance.now() - singleBegan) / 1000);
  console.log(`\nraw embedder: ${raw.toFixed(1)} chunks/s (${sample.length} chunks, default session)`);
  console.log(`raw embedder on one thread: ${perThread.toFixed(1)} chunks/s`);
  console.log(`pipeline / raw embedder: ${((100 * chunks) / pipelineSeconds / raw).toFixed(0)}%`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
