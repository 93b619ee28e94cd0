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
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Command } from "commander";
import pMap from "p-map";
import { DataDistillerClient, type JobStatus } from "../cli/api-client.ts";
import { ensureModels } from "../layers/models.ts";
import { mintToken } from "../localstack/platform/tokens.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import { modelPaths } from "../shared/ml/model-files.ts";
import { EMBEDDER_MAX_TOKENS, embedderTokenCounter, TextTokenizer } from "../shared/ml/tokenizer.ts";
import { embedderThroughput } from "./embedder-throughput.ts";
import { percentiles } from "./retrieval-metrics.ts";

const options = new Command("bench:ingest")
  .requiredOption("--dataset <dir>", "a BEIR-format dataset (corpus.jsonl)")
  .option("--endpoint <url>", "the API", "http://127.0.0.1:3000")
  .option("--token <token>", "bearer token (default: minted by the local issuer)")
  .option("--limit <n>", "only the first N documents", (value) => Number(value))
  .option("--concurrency <n>", "uploads in flight", (value) => Number(value), 16)
  .option(
    "--timeout <seconds>",
    "give up (and say why) when the jobs are not done by then",
    (value) => Number(value),
    3600,
  )
  .parse()
  .opts<{ dataset: string; endpoint: string; token?: string; limit?: number; concurrency: number; timeout: number }>();

/** What the run is doing, for the reason printed if it stops before its figures. */
let phase = "reading the dataset";

async function main() {
  const docs: { id: string; text: string }[] = [];
  let empty = 0;
  for await (const line of createInterface({ input: createReadStream(join(options.dataset, "corpus.jsonl")) })) {
    if (!line.trim()) continue;
    const doc = JSON.parse(line) as { _id: string; title?: string; text?: string };
    const text = [doc.title, doc.text].filter(Boolean).join("\n\n");
    // An empty file is refused at upload (and would fail its job): skipped and counted.
    if (!text.trim()) {
      empty++;
      continue;
    }
    docs.push({ id: doc._id, text });
    if (options.limit && docs.length >= options.limit) break;
  }
  if (docs.length === 0) throw new Error(`no document with text in ${options.dataset}/corpus.jsonl`);
  const token = options.token ?? (await mintToken({ tenant: "bench", audience: "datadistiller" }));
  const api = new DataDistillerClient(options.endpoint, token);
  const collection = `bench-${Date.now().toString(36)}`;

  console.log(
    `ingesting ${docs.length} documents into ${collection} at ${options.endpoint}${empty ? ` (${empty} empty documents skipped)` : ""}`,
  );
  phase = `uploading ${docs.length} documents`;
  const began = Date.now();
  const giveUpAt = began + options.timeout * 1000;
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
  console.log(`uploaded in ${((uploaded - began) / 1000).toFixed(1)} s; waiting for the jobs`);
  // Wait on one unfinished job at a time (the last uploaded that is still running), then collect
  // every finished job from the tenant's listing: the benchmark's own polling stays a negligible
  // part of what it measures, and the end time comes from the jobs' own stage timestamps.
  const ours = new Set(jobIds);
  const pending = new Set(jobIds);
  const jobs: JobStatus[] = [];
  let reported = Date.now();
  while (pending.size > 0) {
    phase = `waiting for ${pending.size} of ${jobIds.length} jobs`;
    if (Date.now() > giveUpAt) {
      const stuck = await Promise.all([...pending].slice(0, 5).map((jobId) => api.job(jobId)));
      throw new Error(
        `${pending.size} of ${jobIds.length} jobs not finished after ${options.timeout} s, e.g. ${stuck
          .map((job) => `${job.filename} ${job.state}${job.error ? ` (${job.error})` : ""}`)
          .join("; ")}`,
      );
    }
    if (Date.now() - reported > 30_000) {
      console.log(`  ${jobIds.length - pending.size} of ${jobIds.length} jobs finished`);
      reported = Date.now();
    }
    const watched = [...pending].at(-1) as string;
    await api
      .waitForJob(watched, { timeoutMs: Math.min(60_000, Math.max(1_000, giveUpAt - Date.now())), intervalMs: 2000 })
      .catch(() => undefined);
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
    // The listing is an index that can trail the job a moment: give it that moment.
    if (pending.has(watched)) await new Promise((resolve) => setTimeout(resolve, 1000));
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
  phase = "measuring the embedder alone";
  const modelDir = await ensureModels();
  const models = modelPaths(modelDir);
  const split = documentSplitter(
    embedderTokenCounter(TextTokenizer.fromFile(models.embedder.tokenizer, EMBEDDER_MAX_TOKENS)),
  );
  const sample: string[] = [];
  for (const doc of docs.slice(0, 400)) {
    for (const chunk of await split(doc.id, new TextEncoder().encode(doc.text), "text/plain")) sample.push(chunk.text);
  }
  const cores = availableParallelism();
  // What the local embed environments run: one single-threaded session per core, all at once.
  const machine = await embedderThroughput(modelDir, sample, { sessions: cores, threads: 1 });
  // One session with onnxruntime's default threads swings between runs (its two threads do not
  // always overlap on short inputs), so it is measured three times.
  const defaults: number[] = [];
  for (let run = 0; run < 3; run++) defaults.push(await embedderThroughput(modelDir, sample, { sessions: 1 }));
  const oneThread = await embedderThroughput(modelDir, sample, { sessions: 1, threads: 1 });
  const rate = (value: number) => `${value.toFixed(1).padStart(6)} chunks/s`;
  const pipelineRate = chunks / pipelineSeconds;
  console.log(`\nembedder alone (${sample.length} chunks, the embed function's batch size):`);
  console.log(`  whole machine: ${cores} one-thread sessions at once   ${rate(machine)}`);
  console.log(
    `  one session, default threads             ${rate(Math.max(...defaults))} (best of 3: ${defaults.map((value) => value.toFixed(1)).join(", ")})`,
  );
  console.log(`  one session, one thread                  ${rate(oneThread)}`);
  console.log(
    `pipeline / embedder alone: ${((100 * pipelineRate) / machine).toFixed(0)}% of the whole machine's, ` +
      `${((100 * pipelineRate) / Math.max(...defaults)).toFixed(0)}% of one default session's`,
  );
}

// Node exits (with status 0) when nothing is left to wait on, even with main() unfinished: a
// promise that can never settle. A benchmark prints its figures or fails with a reason.
let finished = false;
process.on("beforeExit", () => {
  if (finished) return;
  console.error(`bench:ingest stopped before its figures while ${phase}: nothing was left to wait on`);
  process.exit(1);
});

main()
  .then(() => {
    finished = true;
  })
  .catch((error: unknown) => {
    finished = true;
    console.error(`bench:ingest failed while ${phase}: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
