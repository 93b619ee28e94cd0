/**
 * Cross-encoder latency: `npm run bench:rerank -- [--json FILE] [--dataset DIR] [--reranker DIR [--onnx FILE]...]
 *   [--queries N] [--threads LIST] [--top LIST]`
 *
 * Times CrossEncoder.relevance (tokenizing, batching and the ONNX runs: what the search function's rerank
 * stage spends) over the top 20 and top 50 candidates of a query, for the generated models of the real
 * architectures (MiniLM-L6-H384 fp32 and int8, TinyBERT-L2-H128; random weights cost what trained ones do)
 * and for the installed cross-encoder, if any (or --reranker DIR; --onnx times other ONNX files of it too).
 * The int8 MiniLM also runs with ONNX Runtime's full set of graph fusions, which the cross-encoder no longer
 * uses (SLOW_FUSIONS in shared/ml/embedder.ts), so that the gain is measured in the same run. Threads: one
 * (the target: MiniLM-L6, top 20, p50 ≤ 150 ms on one core) and what the search function gets by default
 * (ONNX_THREADS, else the cores, at most 4).
 *
 * Candidates are SciFact-length: with --dataset, real chunks of the corpus (split as the pipeline splits)
 * and real test queries; without, text of the same token lengths (SciFact's chunks, measured with the
 * embedder's tokenizer: median 167 word pieces, mean 151, 10th percentile 76, 90th 194; queries ~20).
 * Every line names the ONNX file it ran. Writes {runs: [{model, onnxFile, randomWeights, topN, threads,
 * latencyMs: {p50, p95}, …}]} with --json.
 */

import { createReadStream, existsSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Command } from "commander";
import { ensureModels } from "../layers/models.ts";
import { ensureRandomRerankers } from "../layers/random-rerankers.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import { modelPaths } from "../shared/ml/model-files.ts";
import { CrossEncoder } from "../shared/ml/reranker.ts";
import { hasReranker } from "../shared/ml/reranker-files.ts";
import { embedderTokenCounter, TextTokenizer } from "../shared/ml/tokenizer.ts";
import { beirDocuments } from "./beir.ts";
import { percentiles } from "./retrieval-metrics.ts";

const options = new Command("bench:rerank")
  .option("--json <file>", "write the runs as JSON")
  .option("--dataset <dir>", "a BEIR dataset (corpus.jsonl, queries.jsonl) for real candidates and queries")
  .option("--reranker <dir>", "also time this cross-encoder (default: the installed one, if any)")
  .option(
    "--onnx <file>",
    "with --reranker: an ONNX file of DIR to time (repeatable; default: the one it loads by default)",
    (file: string, files: string[] = []) => [...files, file],
  )
  .option("--queries <n>", "timed queries per run", (value) => Number(value), 30)
  .option("--threads <list>", "ONNX intra-op threads to time, comma-separated (default: 1 and the search default)")
  .option("--top <list>", "candidate counts to time, comma-separated", "20,50")
  .parse()
  .opts<{
    json?: string;
    dataset?: string;
    reranker?: string;
    onnx?: string[];
    queries: number;
    threads?: string;
    top: string;
  }>();

const TOP_N = options.top.split(",").map(Number);
const log = (line: string) => process.stderr.write(`${line}\n`);

/** A seeded generator, so that every run times the same texts. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** SciFact chunk lengths in word pieces (quantiles 0, 10, 25, 50, 75, 90, 100 %). */
const CHUNK_QUANTILES = [18, 76, 125, 167, 185, 194, 200];

function syntheticTexts(tokenizer: TextTokenizer, count: number, length: (rand: () => number) => number, seed: number) {
  // Whole alphabetic words of the BERT vocabulary: English-like text with realistic word-piece counts.
  const words: string[] = [];
  for (let id = 1000; id < 30000; id++) {
    const token = tokenizer.idToToken(id);
    if (token && /^[a-z]{3,}$/.test(token)) words.push(token);
  }
  const rand = random(seed);
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const target = length(rand);
    const picked: string[] = [];
    while (tokenizer.countTokens(picked.join(" ")) < target)
      picked.push(words[Math.floor(rand() * words.length)] as string);
    texts.push(picked.join(" "));
  }
  return texts;
}

/** A chunk length drawn from SciFact's distribution: uniform between neighbouring quantiles. */
function chunkLength(rand: () => number): number {
  const shares = [0.1, 0.15, 0.25, 0.25, 0.15, 0.1];
  let p = rand();
  let bucket = 0;
  while (bucket < shares.length - 1 && p > (shares[bucket] as number)) p -= shares[bucket++] as number;
  const from = CHUNK_QUANTILES[bucket] as number;
  const to = CHUNK_QUANTILES[bucket + 1] as number;
  return Math.round(from + (to - from) * rand());
}

async function datasetTexts(dir: string, tokenizer: TextTokenizer, chunks: number, queries: number) {
  const split = documentSplitter(embedderTokenCounter(tokenizer));
  const texts: string[] = [];
  for await (const { id, text } of beirDocuments(dir)) {
    for (const chunk of await split(id, new TextEncoder().encode(text), "text/plain")) texts.push(chunk.text);
    if (texts.length >= chunks) break;
  }
  const questions: string[] = [];
  for await (const line of createInterface({ input: createReadStream(join(dir, "queries.jsonl")) })) {
    if (line.trim()) questions.push(String(JSON.parse(line).text));
    if (questions.length >= queries) break;
  }
  return { texts, questions };
}

interface Run {
  model: string;
  onnxFile: string;
  /** ONNX Runtime graph transformers left out ("default": the cross-encoder's own choice, SLOW_FUSIONS). */
  disabledOptimizers: string[] | "default";
  randomWeights: boolean;
  shape?: string;
  topN: number;
  threads: number;
  batchSize: number;
  queries: number;
  meanPairTokens: number;
  latencyMs: { p50: number; p95: number };
  cpuMs: { p50: number };
}

async function main() {
  const embedderTokenizer = TextTokenizer.fromFile(modelPaths(await ensureModels()).embedder.tokenizer, 512);
  const random_ = await ensureRandomRerankers();
  const subjects: { dir: string; onnxFile?: string; shape?: string; disabledOptimizers?: string[] }[] = [
    {
      dir: random_["minilm-l6-h384"],
      onnxFile: "onnx/model.onnx",
      shape: "MiniLM-L6-H384 (ms-marco-MiniLM-L-6-v2), fp32",
    },
    {
      dir: random_["minilm-l6-h384"],
      onnxFile: "onnx/model_quantized.onnx",
      shape: "MiniLM-L6-H384 (ms-marco-MiniLM-L-6-v2), int8",
    },
    {
      dir: random_["minilm-l6-h384"],
      onnxFile: "onnx/model_quantized.onnx",
      shape: "MiniLM-L6-H384, int8, all ORT fusions (before)",
      disabledOptimizers: [],
    },
    { dir: random_["tinybert-l2-h128"], shape: "TinyBERT-L2-H128 (ms-marco-TinyBERT-L-2-v2), fp32" },
  ];
  const installed = options.reranker ?? modelPaths(await ensureModels()).reranker;
  if (existsSync(installed) && hasReranker(installed)) {
    if (options.onnx) for (const onnxFile of options.onnx) subjects.push({ dir: installed, onnxFile });
    else subjects.push({ dir: installed });
  }

  const queryCount = options.queries + 3;
  let texts: string[];
  let questions: string[];
  if (options.dataset) {
    ({ texts, questions } = await datasetTexts(options.dataset, embedderTokenizer, 4000, queryCount));
    log(`candidates: ${texts.length} chunks of ${options.dataset}; queries: its first ${questions.length}`);
  } else {
    texts = syntheticTexts(embedderTokenizer, 400, chunkLength, 7);
    questions = syntheticTexts(embedderTokenizer, queryCount, () => 20, 11);
    log("candidates: text of SciFact's chunk lengths (pass --dataset for SciFact itself)");
  }
  const searchThreads = Number(process.env.ONNX_THREADS) || Math.min(4, availableParallelism());
  const threadCounts = options.threads ? options.threads.split(",").map(Number) : [...new Set([1, searchThreads])];

  const rand = random(3);
  // The same candidate lists for every model: query i gets 50 chunks drawn at random.
  const lists = questions.map(() =>
    Array.from({ length: 50 }, () => texts[Math.floor(rand() * texts.length)] as string),
  );
  const runs: Run[] = [];
  for (const threads of threadCounts) {
    const encoders: CrossEncoder[] = [];
    for (const subject of subjects) {
      encoders.push(
        await CrossEncoder.load(subject.dir, {
          threads,
          ...(subject.onnxFile ? { onnxFile: subject.onnxFile } : {}),
          ...(subject.disabledOptimizers ? { disabledOptimizers: subject.disabledOptimizers } : {}),
        }),
      );
    }
    for (const topN of TOP_N) {
      // The models take turns on each query, so that a load on the machine weighs on all of them alike.
      const timings = subjects.map(() => ({ wall: [] as number[], cpu: [] as number[], tokens: 0 }));
      for (const [i, question] of questions.entries()) {
        const candidates = (lists[i] as string[]).slice(0, topN);
        for (const [s, encoder] of encoders.entries()) {
          const timing = timings[s] as (typeof timings)[number];
          const cpuStart = process.cpuUsage();
          const started = performance.now();
          await encoder.relevance(question, candidates);
          const elapsed = performance.now() - started;
          const used = process.cpuUsage(cpuStart);
          if (i < 3) continue; // warm-up
          timing.wall.push(elapsed);
          timing.cpu.push((used.user + used.system) / 1000);
          for (const candidate of candidates)
            timing.tokens += encoder.tokenizer.encodePair(question, candidate).ids.length;
        }
      }
      for (const [s, encoder] of encoders.entries()) {
        const subject = subjects[s] as (typeof subjects)[number];
        const { wall, cpu, tokens } = timings[s] as (typeof timings)[number];
        const { info } = encoder;
        const run: Run = {
          model: info.name,
          onnxFile: info.onnxFile,
          disabledOptimizers: subject.disabledOptimizers ?? "default",
          randomWeights: info.randomWeights,
          ...(subject.shape ? { shape: subject.shape } : {}),
          topN,
          threads,
          batchSize: info.batchSize,
          queries: wall.length,
          meanPairTokens: Math.round(tokens / (wall.length * topN)),
          latencyMs: { p50: round(percentiles(wall).p50), p95: round(percentiles(wall).p95) },
          cpuMs: { p50: round(percentiles(cpu).p50) },
        };
        runs.push(run);
        log(
          `${(subject.shape ?? info.name).padEnd(48)} ${info.onnxFile.padEnd(26)} top ${String(topN).padStart(2)}  threads ${threads}  batch ${info.batchSize}  ` +
            `p50 ${run.latencyMs.p50} ms  p95 ${run.latencyMs.p95} ms  (cpu p50 ${run.cpuMs.p50} ms, ${run.meanPairTokens} tokens/pair)`,
        );
      }
    }
  }
  const target = runs.find(
    (run) =>
      run.onnxFile === "onnx/model.onnx" &&
      run.model === "random-minilm-l6-h384" &&
      run.topN === 20 &&
      run.threads === 1,
  );
  const best = runs
    .filter((run) => run.model === "random-minilm-l6-h384" && run.topN === 20 && run.threads === 1)
    .sort((a, b) => a.latencyMs.p50 - b.latencyMs.p50)[0];
  if (target && best) {
    log(
      `\ntarget MiniLM-L6 shape, top 20, one thread: p50 ≤ 150 ms — fp32 ${target.latencyMs.p50} ms, best (${best.onnxFile}) ${best.latencyMs.p50} ms: ${best.latencyMs.p50 <= 150 ? "met" : "NOT met"}`,
    );
  }
  if (options.json) writeFileSync(options.json, `${JSON.stringify({ runs }, null, 2)}\n`);
}

const round = (value: number) => Math.round(value * 10) / 10;

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
