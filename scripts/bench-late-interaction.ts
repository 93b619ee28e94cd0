/**
 * Late-interaction reranking with the embedder's own token vectors, measured on a BEIR dataset:
 *   npm run eval -- --dataset DIR --modes hybrid --candidates /tmp/candidates.jsonl
 *   npm run bench:late-interaction -- --dataset DIR --candidates /tmp/candidates.jsonl [--json FILE]
 *
 * The eval writes each test query's hybrid ranking (300 chunks deep, fused scores, the text of the
 * first 50), as the search service returns it. This script scores the first N candidates of each query
 * ColBERT-style, without trained late-interaction weights: MaxSim(q, p) = Σ over query tokens of the
 * largest cosine with a passage token, from the embedding model's last_hidden_state (the token vectors
 * the embedder mean-pools), each L2-normalised; the query and passage get the model's prefixes. Variants
 * keep or drop the [CLS]/[SEP] tokens. The score is combined with the fused order exactly as the
 * cross-encoder's is (combineRerank in shared/domain/rerank.ts: `interpolate` or `rank`, with the
 * weight swept from 0 = fused order to 1 = MaxSim order), and the reranked head plus the rest of the
 * ranking is scored by nDCG@10 over documents, as the eval does.
 *
 * Against tuning on the test set: every row reports all queries and the odd and even halves (by
 * position, as eval's halves); "held-out" picks the weight on one half and reports it on the other
 * (both ways, averaged), next to the a-priori weight 0.5.
 *
 * Cost: the MaxSim step per query is the ONNX run of each of the N passages (nothing of it is stored at
 * index time) plus the similarity products, on one thread (--threads); the query's token vectors come
 * from the run that embeds it for dense retrieval anyway, so they are not counted. CPU time is this
 * process's (process.cpuUsage) around the runs; each chunk is run once and its cost charged to every
 * query that reranks it.
 *
 * Measured 2026-12-04 on SciFact (300 test queries, all-minilm-l6-v2-q, no prefixes; one thread, load
 * average ~3 on 2 cores): hybrid 0.7275. The a-priori setting (interpolate, weight 0.5) gives 0.7391 over
 * the top 20 (word pieces only; 0.7409 with [CLS]/[SEP]) and 0.7379 over the top 50: +0.010 to +0.013,
 * ±0.007 standard error (paired), ~40 queries up and ~26 down, and almost all of it on the odd half (even:
 * +0.001 to +0.003). Picking method and weight on one half and reporting the other gives 0.7297 to 0.7342
 * (+0.002 to +0.007). The passage runs cost ~400 ms CPU per query over the top 20 (~1 s over the top 50),
 * two thirds of the int8 cross-encoder's: not offered as a rerank mode.
 */
import { createReadStream, existsSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Command } from "commander";
import { configuredDefaultModel, ensureModels } from "../layers/models.ts";
import { combineRerank, type RerankMethod } from "../shared/domain/rerank.ts";
import { batchTensors, createSession } from "../shared/ml/embedder.ts";
import { modelFiles } from "../shared/ml/model-files.ts";
import { embeddingModel } from "../shared/ml/model-registry.ts";
import { TextTokenizer } from "../shared/ml/tokenizer.ts";
import { beirQrels } from "./beir.ts";
import { ndcgAtK } from "./retrieval-metrics.ts";

const options = new Command("bench:late-interaction")
  .requiredOption("--dataset <dir>", "the BEIR dataset the candidates came from (for qrels/test.tsv)")
  .requiredOption("--candidates <file>", "the hybrid rankings `npm run eval -- --candidates FILE` wrote")
  .option("--model <id>", "the embedding model (default: the default model of new collections)")
  .option("--top <list>", "candidate counts to rerank, comma-separated", "20,50")
  .option("--threads <n>", "ONNX intra-op threads", (value) => Number(value), 1)
  .option("--limit-queries <n>", "only the first N queries", (value) => Number(value))
  .option("--json <file>", "write every row as JSON")
  .parse()
  .opts<{
    dataset: string;
    candidates: string;
    model?: string;
    top: string;
    threads: number;
    limitQueries?: number;
    json?: string;
  }>();

const log = (line: string) => process.stderr.write(`${line}\n`);
const TOP_N = options.top.split(",").map(Number);
const WEIGHTS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const METHODS: RerankMethod[] = ["interpolate", "rank"];
/** Token selections: with [CLS]/[SEP] on both sides, or the word pieces alone. */
const VARIANTS = { words: false, specials: true } as const;
type Variant = keyof typeof VARIANTS;
const A_PRIORI = { method: "interpolate" as RerankMethod, weight: 0.5 };

interface Candidate {
  documentId: string;
  chunkId: string;
  fused: number;
  text?: string;
}
interface QueryRanking {
  queryId: string;
  query: string;
  candidates: Candidate[];
}

/** Unit-length token vectors of one text, with and without its first and last (special) tokens. */
interface TokenVectors {
  /** [tokens × hidden], row-major, every row unit length. */
  data: Float32Array;
  tokens: number;
  hidden: number;
  cpuMs: number;
  wallMs: number;
}

async function main() {
  const model = embeddingModel(options.model ?? configuredDefaultModel());
  const files = modelFiles(await ensureModels([model.id]), model.id);
  const session = await createSession(files.onnx, options.threads);
  const tokenizer = TextTokenizer.fromFile(files.tokenizer, model.maxTokens);
  const outputName = session.outputNames[0] as string;
  log(`model ${model.id}, output ${outputName}, ${options.threads} thread(s)`);
  log(`prefixes: query ${JSON.stringify(model.queryPrefix)}, passage ${JSON.stringify(model.passagePrefix)}`);

  /** The model's token vectors of `text` (prefix included), each L2-normalised. */
  const tokenVectors = async (text: string): Promise<TokenVectors> => {
    const encoded = tokenizer.encode(text);
    const cpu = process.cpuUsage();
    const started = performance.now();
    const output = (await session.run(batchTensors(session, [encoded], tokenizer.padId)))[outputName];
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    if (output?.dims.length !== 3) throw new Error(`${outputName} is not [batch, tokens, hidden]`);
    const [, tokens, hidden] = output.dims as [number, number, number];
    const data = Float32Array.from(output.data as Float32Array);
    for (let t = 0; t < tokens; t++) {
      let norm = 0;
      for (let h = 0; h < hidden; h++) norm += (data[t * hidden + h] as number) ** 2;
      norm = Math.sqrt(norm) || 1;
      for (let h = 0; h < hidden; h++) data[t * hidden + h] = (data[t * hidden + h] as number) / norm;
    }
    return { data, tokens, hidden, cpuMs: (used.user + used.system) / 1000, wallMs };
  };

  /** Σ over the query's tokens of the best cosine among the passage's; `specials` keeps [CLS]/[SEP]. */
  const maxSim = (query: TokenVectors, passage: TokenVectors, specials: boolean): number => {
    const skip = specials ? 0 : 1;
    const { hidden } = query;
    let total = 0;
    for (let i = skip; i < query.tokens - skip; i++) {
      let best = -Infinity;
      for (let j = skip; j < passage.tokens - skip; j++) {
        let dot = 0;
        const qi = i * hidden;
        const pj = j * hidden;
        for (let h = 0; h < hidden; h++) dot += (query.data[qi + h] as number) * (passage.data[pj + h] as number);
        if (dot > best) best = dot;
      }
      total += best;
    }
    return total;
  };

  // Judgements and rankings.
  const qrels = await beirQrels(options.dataset);
  if (!existsSync(options.candidates))
    throw new Error(`${options.candidates} not found: run the eval with --candidates`);
  let rankings: QueryRanking[] = [];
  for await (const line of createInterface({ input: createReadStream(options.candidates) })) {
    if (line.trim()) rankings.push(JSON.parse(line));
  }
  if (options.limitQueries) rankings = rankings.slice(0, options.limitQueries);
  const deepest = Math.max(...TOP_N);
  log(`${rankings.length} queries, reranking the first ${TOP_N.join(" / ")} candidates`);

  // Token vectors of every query and of every candidate any query reranks (each chunk once).
  const passages = new Map<string, TokenVectors>();
  const queries = new Map<string, TokenVectors>();
  const began = performance.now();
  for (const [q, ranking] of rankings.entries()) {
    queries.set(ranking.queryId, await tokenVectors(model.queryPrefix + ranking.query));
    for (const candidate of ranking.candidates.slice(0, deepest)) {
      if (passages.has(candidate.chunkId)) continue;
      if (candidate.text === undefined) throw new Error(`candidate ${candidate.chunkId} has no text`);
      passages.set(candidate.chunkId, await tokenVectors(model.passagePrefix + candidate.text));
    }
    if ((q + 1) % 25 === 0) {
      log(`${q + 1} queries, ${passages.size} chunks run (${((performance.now() - began) / 1000).toFixed(0)} s)`);
    }
  }

  // MaxSim of every query's first `deepest` candidates, timed per query (the products only).
  const scores = new Map<string, Record<Variant, number[]>>();
  const productMs = new Map<string, number>();
  for (const ranking of rankings) {
    const query = queries.get(ranking.queryId) as TokenVectors;
    const head = ranking.candidates.slice(0, deepest);
    const perVariant = {} as Record<Variant, number[]>;
    for (const [variant, specials] of Object.entries(VARIANTS) as [Variant, boolean][]) {
      const started = performance.now();
      perVariant[variant] = head.map((candidate) =>
        maxSim(query, passages.get(candidate.chunkId) as TokenVectors, specials),
      );
      if (variant === "words") productMs.set(ranking.queryId, performance.now() - started);
    }
    scores.set(ranking.queryId, perVariant);
  }

  const ndcgOf = (ranking: QueryRanking, order: Candidate[]) =>
    ndcgAtK([...new Set(order.map((candidate) => candidate.documentId))], qrels.get(ranking.queryId) ?? new Map(), 10);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
  const halves = (values: number[]) => ({
    all: mean(values),
    odd: mean(values.filter((_, i) => i % 2 === 1)),
    even: mean(values.filter((_, i) => i % 2 === 0)),
  });
  const round = (value: number, digits = 4) => Math.round(value * 10 ** digits) / 10 ** digits;

  const hybridPerQuery = rankings.map((ranking) => ndcgOf(ranking, ranking.candidates));
  const hybrid = halves(hybridPerQuery);
  /** The paired difference with the fused order: mean, its standard error, and queries up / down. */
  const paired = (perQuery: number[]) => {
    const diffs = perQuery.map((value, i) => value - (hybridPerQuery[i] as number));
    const mu = mean(diffs);
    const variance = diffs.reduce((sum, d) => sum + (d - mu) ** 2, 0) / Math.max(1, diffs.length - 1);
    return {
      diff: round(mu),
      se: round(Math.sqrt(variance / Math.max(1, diffs.length))),
      better: diffs.filter((d) => d > 1e-9).length,
      worse: diffs.filter((d) => d < -1e-9).length,
    };
  };
  const rows: {
    top: number;
    variant: Variant;
    method: RerankMethod;
    weight: number;
    ndcg: { all: number; odd: number; even: number };
    paired: ReturnType<typeof paired>;
  }[] = [];
  for (const top of TOP_N) {
    for (const variant of Object.keys(VARIANTS) as Variant[]) {
      for (const method of METHODS) {
        for (const weight of WEIGHTS) {
          const perQuery = rankings.map((ranking) => {
            const head = ranking.candidates.slice(0, top).map((candidate) => ({
              ...candidate,
              scores: { fused: candidate.fused },
            }));
            const sims = (scores.get(ranking.queryId) as Record<Variant, number[]>)[variant].slice(0, top);
            return ndcgOf(ranking, [...combineRerank(head, sims, method, weight), ...ranking.candidates.slice(top)]);
          });
          rows.push({ top, variant, method, weight, ndcg: halves(perQuery), paired: paired(perQuery) });
        }
      }
    }
  }

  // Cost per query: the N passage runs (charged from each chunk's one run) and the products.
  const cost = Object.fromEntries(
    TOP_N.map((top) => {
      const cpu: number[] = [];
      const wall: number[] = [];
      const products: number[] = [];
      for (const ranking of rankings) {
        const head = ranking.candidates
          .slice(0, top)
          .map((candidate) => passages.get(candidate.chunkId) as TokenVectors);
        cpu.push(head.reduce((sum, vectors) => sum + vectors.cpuMs, 0));
        wall.push(head.reduce((sum, vectors) => sum + vectors.wallMs, 0));
        // The products scale with the candidates: the deepest head's time, prorated.
        products.push(
          ((productMs.get(ranking.queryId) as number) * top) / Math.min(deepest, ranking.candidates.length),
        );
      }
      const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
      const p50 = (values: number[]) => sorted(values)[Math.floor(values.length / 2)] ?? 0;
      return [
        top,
        {
          runCpuMs: { mean: round(mean(cpu), 1), p50: round(p50(cpu), 1) },
          runWallMs: { mean: round(mean(wall), 1), p50: round(p50(wall), 1) },
          maxSimMs: { mean: round(mean(products), 2) },
        },
      ];
    }),
  );

  // Held-out: the best (method, weight) on one half, reported on the other, per top N and variant.
  const heldOut = TOP_N.flatMap((top) =>
    (Object.keys(VARIANTS) as Variant[]).map((variant) => {
      const candidates = rows.filter((row) => row.top === top && row.variant === variant);
      const best = (half: "odd" | "even") =>
        candidates.reduce((a, b) => (b.ndcg[half] > a.ndcg[half] ? b : a), candidates[0] as (typeof rows)[number]);
      const onOdd = best("odd");
      const onEven = best("even");
      const fixed = candidates.find(
        (row) => row.method === A_PRIORI.method && row.weight === A_PRIORI.weight,
      ) as (typeof rows)[number];
      return {
        top,
        variant,
        pickedOnOdd: { method: onOdd.method, weight: onOdd.weight, even: round(onOdd.ndcg.even) },
        pickedOnEven: { method: onEven.method, weight: onEven.weight, odd: round(onEven.ndcg.odd) },
        heldOut: round((onOdd.ndcg.even + onEven.ndcg.odd) / 2),
        hybridHeldOut: round((hybrid.even + hybrid.odd) / 2),
        aPriori: { ...fixed.ndcg, ...fixed.paired },
      };
    }),
  );

  const fmt = (value: number) => value.toFixed(4);
  console.log(
    `\nhybrid (fused order): nDCG@10 ${fmt(hybrid.all)} (odd ${fmt(hybrid.odd)} / even ${fmt(hybrid.even)}), ${rankings.length} queries`,
  );
  for (const top of TOP_N) {
    const c = cost[top] as (typeof cost)[number];
    console.log(
      `top ${top}: passage runs ${c.runCpuMs.mean} ms CPU (p50 ${c.runCpuMs.p50}), ${c.runWallMs.mean} ms wall; MaxSim products ${c.maxSimMs.mean} ms, per query`,
    );
  }
  console.log(
    `\n${["N", "tokens", "method", "weight", "all", "odd", "even", "Δ all", "SE", "up", "down"].map((h) => h.padStart(11)).join(" ")}`,
  );
  for (const row of rows) {
    console.log(
      [
        row.top,
        row.variant,
        row.method,
        row.weight,
        fmt(row.ndcg.all),
        fmt(row.ndcg.odd),
        fmt(row.ndcg.even),
        fmt(row.paired.diff),
        fmt(row.paired.se),
        row.paired.better,
        row.paired.worse,
      ]
        .map((cell) => String(cell).padStart(11))
        .join(" "),
    );
  }
  console.log("\nheld-out (weight and method picked on one half, reported on the other, averaged):");
  for (const row of heldOut) {
    console.log(
      `N ${row.top} ${row.variant.padEnd(8)} picked on odd ${row.pickedOnOdd.method} ${row.pickedOnOdd.weight} → even ${fmt(row.pickedOnOdd.even)}; ` +
        `picked on even ${row.pickedOnEven.method} ${row.pickedOnEven.weight} → odd ${fmt(row.pickedOnEven.odd)}; ` +
        `held-out ${fmt(row.heldOut)} vs hybrid ${fmt(row.hybridHeldOut)}; a priori (${A_PRIORI.method} ${A_PRIORI.weight}) ` +
        `all ${fmt(row.aPriori.all)} (odd ${fmt(row.aPriori.odd)} / even ${fmt(row.aPriori.even)}), ` +
        `${row.aPriori.diff >= 0 ? "+" : ""}${fmt(row.aPriori.diff)} ± ${fmt(row.aPriori.se)} (SE) over hybrid, ` +
        `${row.aPriori.better} queries up, ${row.aPriori.worse} down`,
    );
  }
  if (options.json) {
    writeFileSync(
      options.json,
      `${JSON.stringify({ model: model.id, threads: options.threads, queries: rankings.length, hybrid, cost, rows, heldOut }, null, 2)}\n`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
