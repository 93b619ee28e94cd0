/**
 * Ingestion of the running platform (start it first with `npm start`):
 *   npm run bench:ingest -- --dataset ../shared/eval/scifact [--limit N] [--json FILE] [--latency]
 *
 * 1. Time to searchable: one 10-page PDF (typeset from the dataset's text) uploaded on the idle
 *    platform, from the moment its PUT is answered to its job's COMPLETED, ten times.
 * 2. Throughput: every document of a BEIR corpus uploaded as a text file by `--concurrency`
 *    clients at once (each asks POST /uploads, then PUTs its file), timing every upload request;
 *    documents per minute until the last job finished, and the CPU each function and each local
 *    server spent per document (from /proc).
 * 3. The embedder alone, on the same machine, in the same run, as the yardstick.
 * `--latency` runs only the first part. `--json FILE` writes the figures others rely on.
 */
import { writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { Command } from "commander";
import pMap from "p-map";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { DataDistillerClient, type JobStatus, uploadFile } from "../cli/api-client.ts";
import { ensureModels } from "../layers/models.ts";
import { cdkOut } from "../localstack/platform/platform.ts";
import { mintToken } from "../localstack/platform/tokens.ts";
import { repoRoot } from "../localstack/servers/paths.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import { modelPaths } from "../shared/ml/model-files.ts";
import { EMBEDDER_MAX_TOKENS, embedderTokenCounter, TextTokenizer } from "../shared/ml/tokenizer.ts";
import { beirDocuments } from "./beir.ts";
import { embedderThroughput } from "./embedder-throughput.ts";
import { cpuSpent, functionServices, platformCpu } from "./process-cpu.ts";
import { percentiles } from "./retrieval-metrics.ts";

const options = new Command("bench:ingest")
  .requiredOption("--dataset <dir>", "a BEIR-format dataset (corpus.jsonl)")
  .option("--endpoint <url>", "the API", `http://127.0.0.1:${process.env.API_PORT ?? 3000}`)
  .option("--token <token>", "bearer token (default: minted by the local issuer)")
  .option("--limit <n>", "only the first N documents", (value) => Number(value))
  .option("--concurrency <n>", "clients uploading at once", (value) => Number(value), 20)
  .option("--latency", "only the time to searchable of a 10-page PDF")
  .option("--latency-runs <n>", "uploads of the PDF, one after the other", (value) => Number(value), 10)
  .option("--json <file>", "also write the figures as JSON")
  .option(
    "--timeout <seconds>",
    "give up (and say why) when the jobs are not done by then",
    (value) => Number(value),
    3600,
  )
  .parse()
  .opts<{
    dataset: string;
    endpoint: string;
    token?: string;
    limit?: number;
    concurrency: number;
    latency?: boolean;
    latencyRuns: number;
    json?: string;
    timeout: number;
  }>();

/** What the JSON file holds (issue 18's names); figures a run did not measure are null. */
interface IngestFigures {
  documents: number;
  chunks: number;
  failed: number;
  documentsPerMinute: number | null;
  embedderAloneChunksPerSecond: number | null;
  ratio: number | null;
  cpuMsPerDocument: Record<string, number>;
  timeToSearchableMs: { p50: number; p95: number } | null;
  uploadRequestMs: { p50: number; p95: number; p99: number } | null;
  /** How the run went: the machine's load, the settings, the rest of the figures. */
  context: Record<string, unknown>;
}

/** What the run is doing, for the reason printed if it stops before its figures. */
let phase = "reading the dataset";

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const load = () =>
  loadavg()
    .map((value) => value.toFixed(1))
    .join(" ");

async function readCorpus(): Promise<{ docs: { id: string; text: string }[]; empty: number }> {
  const docs: { id: string; text: string }[] = [];
  let empty = 0;
  for await (const { id, text } of beirDocuments(options.dataset)) {
    // An empty file is refused at upload (and would fail its job): skipped and counted.
    if (!text.trim()) {
      empty++;
      continue;
    }
    docs.push({ id, text });
    if (options.limit && docs.length >= options.limit) break;
  }
  if (docs.length === 0) throw new Error(`no document with text in ${options.dataset}/corpus.jsonl`);
  return { docs, empty };
}

/** A PDF of `pages` letter pages of 11 pt Helvetica, filled with the corpus's text in order. */
async function typesetPdf(texts: string[], pages: number): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  // Helvetica's standard encoding (WinAnsi) covers Latin-1: anything else becomes "?".
  const words = texts
    .join(" ")
    .replace(/[^\x20-\x7e\xa0-\xff]/g, (char) => (/\s/.test(char) ? " " : "?"))
    .split(/\s+/)
    .filter(Boolean);
  const [size, lineHeight, margin, width, height] = [11, 14, 72, 612, 792];
  const linesPerPage = Math.floor((height - 2 * margin) / lineHeight);
  let next = 0;
  for (let number = 0; number < pages; number++) {
    const page = pdf.addPage([width, height]);
    for (let line = 0; line < linesPerPage; line++) {
      let text = "";
      while (next < words.length) {
        const candidate = text ? `${text} ${words[next]}` : (words[next] as string);
        if (font.widthOfTextAtSize(candidate, size) > width - 2 * margin) break;
        text = candidate;
        next = (next + 1) % words.length;
      }
      page.drawText(text, { x: margin, y: height - margin - line * lineHeight, size, font });
    }
  }
  return pdf.save();
}

/** PUT answered → COMPLETED for one PDF at a time on the idle platform. */
async function timeToSearchable(api: DataDistillerClient, texts: string[]) {
  phase = "typesetting the 10-page PDF";
  const pdf = await typesetPdf(texts, 10);
  const collection = `bench-latency-${Date.now().toString(36)}`;
  const times: number[] = [];
  let chunks = 0;
  console.log(
    `time to searchable: a 10-page PDF (${(pdf.byteLength / 1024).toFixed(0)} KiB), ${options.latencyRuns} runs`,
  );
  for (let run = 0; run < options.latencyRuns; run++) {
    phase = `time to searchable, run ${run + 1}`;
    const ticket = await api.requestUpload({
      filename: `paper-${run}.pdf`,
      contentType: "application/pdf",
      size: pdf.byteLength,
      collection,
    });
    await uploadFile(ticket.upload, pdf, "application/pdf");
    const putDone = Date.now();
    const job = await api.waitForJob(ticket.jobId, { timeoutMs: 120_000, intervalMs: 50 });
    if (job.state !== "COMPLETED") throw new Error(`the PDF's job ended ${job.state}: ${job.error}`);
    const completed = Date.parse(job.stages.COMPLETED ?? "");
    times.push(completed - putDone);
    chunks = job.counts.chunksTotal;
    console.log(
      `  run ${String(run + 1).padStart(2)}: ${String(completed - putDone).padStart(5)} ms  ` +
        `(${stageLine(job)})  load ${load()}`,
    );
    // Let the platform settle (the listing index, the job-status function) before the next one.
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const { p50, p95 } = percentiles(times);
  // Searchable means found: the last document answers a query made of its own words.
  const hits = await api.search({ query: texts[0]?.split(/\s+/).slice(0, 12).join(" ") ?? "", collection, k: 5 });
  console.log(
    `time to searchable (${chunks} chunks): p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms; ` +
      `a search of its words then finds it: ${hits.results.length > 0 ? "yes" : "NO"}`,
  );
  return { p50: round(p50, 0), p95: round(p95, 0), chunks, runs: times };
}

/** Milliseconds between the job's recorded stages, for one line of output. */
function stageLine(job: JobStatus): string {
  const order = ["PENDING_UPLOAD", "UPLOADED", "SPLITTING", "EMBEDDING", "INDEXING", "COMPLETED"] as const;
  const parts: string[] = [];
  for (let i = 1; i < order.length; i++) {
    const [from, to] = [
      job.stages[order[i - 1] as keyof JobStatus["stages"]],
      job.stages[order[i] as keyof JobStatus["stages"]],
    ];
    if (from && to) parts.push(`${order[i]?.toLowerCase()} +${Date.parse(to) - Date.parse(from)}`);
  }
  return parts.join(", ");
}

async function throughput(api: DataDistillerClient, docs: { id: string; text: string }[]) {
  const collection = `bench-${Date.now().toString(36)}`;
  const services = functionServices(cdkOut);
  console.log(
    `\nthroughput: ${docs.length} documents into ${collection}, ${options.concurrency} clients at once (load ${load()})`,
  );
  phase = `uploading ${docs.length} documents`;
  const requestMs: number[] = [];
  const putMs: number[] = [];
  const cpuBefore = platformCpu(repoRoot, services);
  const benchCpuBefore = process.cpuUsage();
  const began = Date.now();
  const giveUpAt = began + options.timeout * 1000;
  const jobIds = await pMap(
    docs,
    async (doc, index) => {
      const bytes = new TextEncoder().encode(doc.text);
      const asked = performance.now();
      const ticket = await api.requestUpload({
        filename: `${doc.id}.txt`,
        contentType: "text/plain",
        size: bytes.byteLength,
        collection,
      });
      const answered = performance.now();
      await uploadFile(ticket.upload, bytes, "text/plain");
      // By the order requests were sent, so that the first ones are the first sent.
      requestMs[index] = answered - asked;
      putMs[index] = performance.now() - answered;
      return ticket.jobId;
    },
    { concurrency: options.concurrency },
  );
  const uploaded = Date.now();
  const uploadLoad = load();
  console.log(`uploaded in ${((uploaded - began) / 1000).toFixed(1)} s (load ${uploadLoad}); waiting for the jobs`);
  const jobs = await waitForAll(api, jobIds, giveUpAt);
  const cpuAfter = platformCpu(repoRoot, services);
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const failed = jobs.filter((job) => job.state !== "COMPLETED");
  const chunks = jobs.reduce((sum, job) => sum + job.counts.chunksTotal, 0);
  const lastDone = Math.max(...jobs.map((job) => Date.parse(job.stages.COMPLETED ?? job.stages.FAILED ?? "")));
  const pipelineSeconds = (lastDone - began) / 1000;

  // The first requests start the API's execution environments (cold starts, as in Lambda): they
  // are reported apart, and the percentiles are those of the warm platform.
  const warmUp = Math.min(requestMs.length - 1, 2 * options.concurrency);
  const upload = percentiles(requestMs.slice(warmUp));
  const put = percentiles(putMs.slice(warmUp));
  const coldest = Math.max(...requestMs.slice(0, warmUp));
  console.log(`\ndocuments: ${jobs.length} (${failed.length} failed), chunks: ${chunks}`);
  console.log(
    `POST /uploads at ${options.concurrency} clients: p50 ${upload.p50.toFixed(0)} ms, p95 ${upload.p95.toFixed(0)} ms, ` +
      `p99 ${upload.p99.toFixed(0)} ms, max ${upload.max.toFixed(0)} ms after the first ${warmUp} ` +
      `(slowest of those: ${coldest.toFixed(0)} ms); PUT to S3: p50 ${put.p50.toFixed(0)} ms, p99 ${put.p99.toFixed(0)} ms`,
  );
  console.log(
    `all jobs finished ${pipelineSeconds.toFixed(1)} s after the first upload: ` +
      `${((jobs.length / pipelineSeconds) * 60).toFixed(0)} documents/min, ${(chunks / pipelineSeconds).toFixed(1)} chunks/s (load ${load()})`,
  );
  const stage = (from: keyof JobStatus["stages"], to: keyof JobStatus["stages"]) =>
    percentiles(
      jobs
        .filter((job) => job.stages[from] && job.stages[to])
        .map((job) => Date.parse(job.stages[to] ?? "") - Date.parse(job.stages[from] ?? "")),
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

  const spent = cpuSpent(cpuBefore, cpuAfter);
  spent.set("bench-client", (benchCpu.user + benchCpu.system) / 1000);
  const cpuMsPerDocument: Record<string, number> = {};
  const totalMs = [...spent.values()].reduce((sum, value) => sum + value, 0);
  console.log(`\nCPU per document (${(totalMs / 1000).toFixed(0)} CPU-s in all, from /proc):`);
  for (const [role, ms] of [...spent].sort((a, b) => b[1] - a[1])) {
    cpuMsPerDocument[role] = round(ms / jobs.length, 2);
    console.log(
      `  ${role.padEnd(16)} ${(ms / jobs.length).toFixed(1).padStart(7)} ms   ${(ms / 1000).toFixed(1).padStart(7)} s`,
    );
  }
  return {
    documents: jobs.length,
    chunks,
    failed: failed.length,
    pipelineSeconds,
    documentsPerMinute: round((jobs.length / pipelineSeconds) * 60, 0),
    chunksPerSecond: chunks / pipelineSeconds,
    uploadRequestMs: { p50: round(upload.p50), p95: round(upload.p95), p99: round(upload.p99) },
    putMs: { p50: round(put.p50), p95: round(put.p95), p99: round(put.p99) },
    uploadWarmUp: { requests: warmUp, slowestMs: round(coldest) },
    cpuMsPerDocument,
    uploadLoad,
  };
}

/**
 * Waits on one unfinished job at a time (the last uploaded that is still running), then collects
 * every finished job from the tenant's listing: the benchmark's own polling stays a negligible
 * part of what it measures, and the end time comes from the jobs' own stage timestamps.
 */
async function waitForAll(api: DataDistillerClient, jobIds: string[], giveUpAt: number): Promise<JobStatus[]> {
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
      console.log(`  ${jobIds.length - pending.size} of ${jobIds.length} jobs finished (load ${load()})`);
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
  return jobs;
}

/** The embedder alone, on the same machine, same chunker and batch size as the embed function. */
async function embedderAlone(docs: { id: string; text: string }[]) {
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
  console.log(`\nembedder alone (${sample.length} chunks, the embed function's batch size, load ${load()}):`);
  console.log(`  whole machine: ${cores} one-thread sessions at once   ${rate(machine)}`);
  console.log(
    `  one session, default threads             ${rate(Math.max(...defaults))} (best of 3: ${defaults.map((value) => value.toFixed(1)).join(", ")})`,
  );
  console.log(`  one session, one thread                  ${rate(oneThread)}`);
  return { machine, defaultSession: Math.max(...defaults), oneThread, sampleChunks: sample.length };
}

async function main() {
  const { docs, empty } = await readCorpus();
  const token = options.token ?? (await mintToken({ tenant: "bench", audience: "datadistiller" }));
  const api = new DataDistillerClient(options.endpoint, token);
  console.log(
    `bench:ingest at ${options.endpoint}, ${docs.length} documents${empty ? ` (${empty} empty skipped)` : ""}, load ${load()}`,
  );
  const latency = await timeToSearchable(
    api,
    docs.map((doc) => doc.text),
  );
  const figures: IngestFigures = {
    documents: 0,
    chunks: 0,
    failed: 0,
    documentsPerMinute: null,
    embedderAloneChunksPerSecond: null,
    ratio: null,
    cpuMsPerDocument: {},
    timeToSearchableMs: { p50: latency.p50, p95: latency.p95 },
    uploadRequestMs: null,
    context: { cores: availableParallelism(), concurrency: options.concurrency, timeToSearchable: latency },
  };
  if (!options.latency) {
    const run = await throughput(api, docs);
    const embedder = await embedderAlone(docs);
    const ratio = run.chunksPerSecond / embedder.machine;
    console.log(
      `\npipeline / embedder alone: ${(100 * ratio).toFixed(0)}% of the whole machine's ` +
        `(${run.chunksPerSecond.toFixed(1)} / ${embedder.machine.toFixed(1)} chunks/s), ` +
        `${((100 * run.chunksPerSecond) / embedder.defaultSession).toFixed(0)}% of one default session's`,
    );
    Object.assign(figures, {
      documents: run.documents,
      chunks: run.chunks,
      failed: run.failed,
      documentsPerMinute: run.documentsPerMinute,
      embedderAloneChunksPerSecond: round(embedder.machine),
      ratio: round(ratio, 3),
      cpuMsPerDocument: run.cpuMsPerDocument,
      uploadRequestMs: run.uploadRequestMs,
    });
    Object.assign(figures.context, {
      pipelineSeconds: round(run.pipelineSeconds),
      chunksPerSecond: round(run.chunksPerSecond),
      putMs: run.putMs,
      uploadWarmUp: run.uploadWarmUp,
      loadAverageAfterUploads: run.uploadLoad,
      embedderAlone: embedder,
    });
  }
  figures.context.loadAverageAtEnd = load();
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(figures, null, 2)}\n`);
    console.log(`figures written to ${options.json}`);
  }
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
