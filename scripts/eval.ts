/**
 * Retrieval quality on a BEIR dataset, through the real indexing and search code:
 *   npm run eval -- --dataset ../shared/eval/scifact [--model ID] [--json results.json] [--limit-queries N]
 *
 * `--model` picks the embedding model from the registry (default: the default model of new
 * collections, env EMBEDDING_MODEL or cdk.json's `embeddingModel`); passages and queries get the
 * model's prefixes, as the pipeline and search give them.
 *
 * Every document is split with the split stage's extractor and chunker, embedded with the
 * embedder, indexed by the index stage (segments in S3, manifest and job accounting in DynamoDB,
 * on the local stack), and every test query goes through the search service, once per mode.
 * Prints nDCG@10, Recall@100 and MRR@10 per mode (from a 300-deep ranking), and p50/p95/p99
 * latency (warm, one query at a time) of the API's default request (k=10), with the mean time of
 * each search stage. Chunk embeddings are cached between runs (`--no-cache` re-embeds).
 *
 * hybrid+rerank uses the cross-encoder installed in the models root (`npm run models -- --reranker DIR`), or
 * the one `--reranker DIR` names; without either it uses the generated random-weight MiniLM-L6 model, and
 * says so: its quality figures are meaningless, its latency is real.
 */
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { configuredDefaultModel, ensureModels } from "../layers/models.ts";
import { ensureRandomRerankers, type RandomRerankerName } from "../layers/random-rerankers.ts";
import { stackUp } from "../localstack/servers/stack.ts";
import { dynamoDocumentClient, s3Client } from "../shared/adapters/aws-clients.ts";
import { JobStore } from "../shared/adapters/job-store.ts";
import { ManifestStore } from "../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../shared/adapters/object-store.ts";
import { SegmentFiles } from "../shared/adapters/segment-files.ts";
import { DEFAULT_COMPACTION_POLICY } from "../shared/domain/compaction-policy.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import { ExtractionError } from "../shared/domain/errors.ts";
import { FIRST_INDEX } from "../shared/domain/manifest.ts";
import { type EmbeddedGroup, encodeVector } from "../shared/domain/messages.ts";
import { Embedder } from "../shared/ml/embedder.ts";
import { modelFiles, modelPaths } from "../shared/ml/model-files.ts";
import { EMBEDDING_MODEL_IDS, embeddingModel } from "../shared/ml/model-registry.ts";
import { CrossEncoder } from "../shared/ml/reranker.ts";
import { hasReranker } from "../shared/ml/reranker-files.ts";
import { embedderTokenCounter } from "../shared/ml/tokenizer.ts";
import { compactCollection } from "../shared/stages/compaction.ts";
import { indexGroups } from "../shared/stages/indexing.ts";
import { SearchService, searchRequest } from "../shared/stages/search.ts";
import { beirDocuments, beirQrels, jsonLines } from "./beir.ts";
import { EmbeddingCache } from "./eval-cache.ts";
import { createBucket, createJobsTable } from "./eval-resources.ts";
import { mrrAtK, ndcgAtK, percentiles, recallAtK } from "./retrieval-metrics.ts";

const program = new Command("eval")
  .requiredOption("--dataset <dir>", "a BEIR-format dataset: corpus.jsonl, queries.jsonl, qrels/test.tsv")
  .option("--model <id>", `the embedding model: ${EMBEDDING_MODEL_IDS.join(", ")}`)
  .option("--json <file>", "also write the results as JSON")
  .option("--fusion <method>", "hybrid fusion: rrf or weighted (default rrf)")
  .option("--weights <bm25,dense>", "hybrid weights, e.g. 1,1.5 (RRF multipliers, or the weighted blend)")
  .option("--modes <list>", "modes to run (default bm25,dense,hybrid,hybrid+rerank)")
  .option(
    "--variants <list>",
    "more hybrid fusions over the same index, quality only: e.g. 'rrf:1,2;weighted:0.3,0.7' (fusion:bm25,dense); " +
      "every mode also reports nDCG@10 on the odd and even test queries, to pick on one half and report the other",
  )
  .option(
    "--queries <half>",
    "all, odd or even: the test queries by position, to tune fusion on one half and report on the other",
    "all",
  )
  .option("--limit-queries <n>", "evaluate only the first N test queries", (value) => Number(value))
  .option("--no-cache", "embed every chunk again instead of reusing the embeddings of earlier runs")
  .option(
    "--reranker <dir>",
    "the cross-encoder for hybrid+rerank: a model directory, or random[:name] (default: the installed one, else random)",
  )
  .option("--rerank-weight <w>", "the cross-encoder's share of the combined score (0-1)", (value) => Number(value))
  .option("--rerank-method <method>", "interpolate or rank")
  .option(
    "--candidates <file>",
    "write each query's hybrid ranking (300 deep, fused scores, the text of the first 50) as JSON lines, for bench:late-interaction",
  )
  .parse();
const options = program.opts<{
  dataset: string;
  model?: string;
  json?: string;
  limitQueries?: number;
  fusion?: "rrf" | "weighted";
  weights?: string;
  queries: "all" | "odd" | "even";
  modes?: string;
  variants?: string;
  cache: boolean;
  reranker?: string;
  rerankWeight?: number;
  rerankMethod?: "interpolate" | "rank";
  candidates?: string;
}>();

/** The cross-encoder directory: --reranker, else the installed one, else the random-weight MiniLM-L6 shape. */
async function rerankerDir(installed: string): Promise<string> {
  const choice = options.reranker ?? (hasReranker(installed) ? installed : "random");
  if (choice === "random" || choice.startsWith("random:")) {
    const name = (choice.split(":")[1] || "minilm-l6-h384") as RandomRerankerName;
    const dir = (await ensureRandomRerankers())[name];
    if (!dir) throw new Error(`no random model ${name}`);
    return dir;
  }
  return choice;
}

/** How deep the quality pass ranks (Recall@100 counts documents; a document has ~2.4 chunks). */
const QUALITY_DEPTH = 300;
/** Candidates whose text --candidates writes (the deepest rerank benchmarked). */
const CANDIDATE_TEXTS = 50;

async function main() {
  const dir = options.dataset;
  for (const file of ["corpus.jsonl", "queries.jsonl", join("qrels", "test.tsv")]) {
    if (!existsSync(join(dir, file))) throw new Error(`${join(dir, file)} not found: --dataset must be a BEIR dataset`);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  Object.assign(process.env, (await stackUp(log)).env);
  const model = embeddingModel(options.model ?? configuredDefaultModel());
  const modelDir = await ensureModels([model.id]);
  const models = modelPaths(modelDir);
  const embedder = await Embedder.forModel(modelDir, model.id);
  log(`embedding model: ${model.id} (${model.description})`);
  const reranker = await CrossEncoder.load(await rerankerDir(models.reranker));
  log(
    `cross-encoder: ${reranker.info.name} (${reranker.info.onnxFile}, ${reranker.info.inputs.join(", ")}, batch ${reranker.info.batchSize})` +
      (reranker.info.randomWeights
        ? " — RANDOM WEIGHTS: hybrid+rerank quality is meaningless, its latency is real"
        : ""),
  );

  // Judgements and queries.
  const qrels = await beirQrels(dir);
  const queries: { id: string; text: string }[] = [];
  for await (const query of jsonLines(join(dir, "queries.jsonl"))) {
    if (qrels.has(String(query._id))) queries.push({ id: String(query._id), text: String(query.text) });
  }
  const half = queries.filter(
    (_, i) => options.queries === "all" || (options.queries === "odd" ? i % 2 === 1 : i % 2 === 0),
  );
  const evaluated = options.limitQueries ? half.slice(0, options.limitQueries) : half;
  const [bm25Weight, denseWeight] = (options.weights ?? "").split(",").map(Number);
  const fusion = {
    ...(options.fusion ? { fusion: options.fusion } : {}),
    ...(options.weights ? { weights: { bm25: bm25Weight, dense: denseWeight } } : {}),
  };
  if (options.fusion || options.weights) log(`hybrid fusion: ${JSON.stringify(fusion)}`);

  // Index the corpus through the pipeline's own code, on the local stack.
  const run = `eval-${Date.now().toString(36)}`;
  const table = await createJobsTable(run);
  const bucket = await createBucket(run);
  const db = dynamoDocumentClient();
  const jobs = new JobStore(db, table);
  const manifests = new ManifestStore(db, table);
  const objects = new ObjectStore(s3Client());
  // Segments are read by byte range and cached whole in a local directory, as the search function does in /tmp.
  const files = new SegmentFiles(objects, bucket, { cacheDir: join(tmpdir(), `datadistiller-${run}`) });
  const blobs = {
    write: (key: string, body: Uint8Array | readonly Uint8Array[]) => objects.write(bucket, key, body),
    read: (key: string) => objects.read(bucket, key),
    source: (key: string, size: number) => files.source(key, size),
    prefetch: (key: string, size: number) => files.prefetch(key, size),
    retain: (keys: ReadonlySet<string>) => files.retain(keys),
  };
  // Compaction runs as the compaction function would, after each batch that asks for it.
  const compaction = {
    policy: DEFAULT_COMPACTION_POLICY,
    request: async (tenant: string, collection: string) => {
      await compactCollection(tenant, collection, run, { manifests, blobs, policy: DEFAULT_COMPACTION_POLICY });
    },
  };
  const split = documentSplitter(embedderTokenCounter(embedder.tokenizer));
  const cache = options.cache ? new EmbeddingCache(dir, model, modelFiles(modelDir, model.id).onnx) : undefined;
  if (cache) log(`embedding cache: ${cache.size} chunks in ${cache.file}`);
  const embedChunks = (texts: string[]) =>
    cache ? cache.embed(texts, (missing) => embedder.embedPassages(missing)) : embedder.embedPassages(texts);
  const tenant = "eval";
  const collection = "corpus";
  let docs = 0;
  let chunks = 0;
  /** Documents that hold no text (real collections have some): skipped and counted, as the pipeline fails their jobs. */
  const skipped: { documentId: string; reason: string }[] = [];
  const began = Date.now();
  let pending: EmbeddedGroup[] = [];
  const flush = async () => {
    await indexGroups(pending, {
      jobs,
      manifests,
      blobs,
      compaction,
      toEmbed: async () => {
        throw new Error("the evaluation's collection has one index: nothing is sent back to embedding");
      },
    });
    pending = [];
  };
  for await (const { id: documentId, text } of beirDocuments(dir)) {
    let docChunks: Awaited<ReturnType<typeof split>>;
    try {
      docChunks = await split(documentId, new TextEncoder().encode(text), "text/plain");
      if (docChunks.length === 0) throw new ExtractionError("NO_TEXT", "The document contains no text.");
    } catch (error) {
      if (!(error instanceof ExtractionError)) throw error;
      skipped.push({ documentId, reason: error.message });
      continue;
    }
    const jobId = `job-${documentId}`;
    await jobs.create({
      jobId,
      tenant,
      documentId,
      collection,
      filename: `${documentId}.txt`,
      contentType: "text/plain",
      size: text.length,
      metadata: {},
      objectKey: `uploads/${tenant}/${jobId}/${documentId}.txt`,
    });
    await jobs.advance(jobId, "EMBEDDING", { chunksTotal: docChunks.length });
    const vectors = await embedChunks(docChunks.map((chunk) => chunk.text));
    pending.push({
      jobId,
      tenant,
      groupId: `${jobId}:0`,
      document: { documentId, collection, contentType: "text/plain" },
      chunks: docChunks,
      vectors: vectors.map(encodeVector),
      target: { index: FIRST_INDEX, model: model.id },
    });
    docs++;
    chunks += docChunks.length;
    if (pending.length >= 500) {
      await flush();
      // Kept as it grows: an interrupted run resumes where it stopped.
      cache?.save();
    }
    if (docs % 500 === 0)
      log(`indexed ${docs} documents, ${chunks} chunks (${((Date.now() - began) / 1000).toFixed(0)} s)`);
  }
  await flush();
  cache?.save();
  log(`indexed ${docs} documents, ${chunks} chunks in ${((Date.now() - began) / 1000).toFixed(0)} s`);
  if (skipped.length > 0) {
    log(
      `skipped ${skipped.length} documents without text: ${skipped
        .slice(0, 5)
        .map((doc) => doc.documentId)
        .join(", ")}${skipped.length > 5 ? ", …" : ""}`,
    );
  }

  const service = new SearchService({
    manifests,
    blobs,
    embed: (text) => embedder.embedQuery(text),
    defaultModel: model.id,
    reranker,
  });
  const rerankSettings = {
    rerankTopN: 20,
    // Quality is measured on every query: the deadline is the longest a request may ask for.
    rerankDeadlineMs: 10_000,
    ...(options.rerankWeight !== undefined ? { rerankWeight: options.rerankWeight } : {}),
    ...(options.rerankMethod ? { rerankMethod: options.rerankMethod } : {}),
  };
  const modes = {
    bm25: { mode: "bm25", rerank: false },
    dense: { mode: "dense", rerank: false },
    hybrid: { mode: "hybrid", rerank: false, ...fusion },
    "hybrid+rerank": { mode: "hybrid", rerank: true, ...fusion, ...rerankSettings },
  } as Record<string, Record<string, unknown> & { rerank: boolean }>;
  // --variants: more hybrid fusions, measured for quality only (one 300-deep search per query).
  const qualityOnly = new Set<string>();
  for (const variant of (options.variants ?? "").split(";").filter((item) => item.trim())) {
    const [method, weights = "1,1"] = variant.trim().split(":");
    const [bm25, dense] = weights.split(",").map(Number);
    if ((method !== "rrf" && method !== "weighted") || !Number.isFinite(bm25) || !Number.isFinite(dense)) {
      throw new Error(`--variants: "${variant}" is not fusion:bm25,dense (fusion rrf or weighted)`);
    }
    const name = `hybrid ${method} ${bm25},${dense}`;
    modes[name] = { mode: "hybrid", rerank: false, fusion: method, weights: { bm25, dense } };
    qualityOnly.add(name);
  }
  const results: Record<string, unknown> = {};
  // The first search loads the segments (cold); report it, then measure warm.
  const coldStart = performance.now();
  await service.search(tenant, searchRequest.parse({ query: "warm up", collection, k: 10 }));
  log(`cold load of the index: ${(performance.now() - coldStart).toFixed(0)} ms`);
  const wanted = options.modes?.split(",").map((mode) => mode.trim());
  if (options.candidates) writeFileSync(options.candidates, "");
  for (const [name, settings] of Object.entries(modes)) {
    if (wanted && !wanted.includes(name) && !qualityOnly.has(name)) continue;
    const ndcg: number[] = [];
    const recall: number[] = [];
    const mrr: number[] = [];
    const latency: number[] = [];
    const deepLatency: number[] = [];
    const stageTotals: Record<string, number> = {};
    let notReranked = 0;
    for (const query of evaluated) {
      // Latency: the request a client sends by default (k=10), timed warm, one at a time.
      const request = searchRequest.parse({ query: query.text, collection, ...settings });
      let started = performance.now();
      if (!qualityOnly.has(name)) {
        const answer = await service.search(tenant, request);
        latency.push(performance.now() - started);
        for (const [stage, ms] of Object.entries(answer.timings)) stageTotals[stage] = (stageTotals[stage] ?? 0) + ms;
      }
      // Quality: the same search ranked deeper than the API's k limit, for Recall@100.
      started = performance.now();
      const response = await service.search(tenant, { ...request, k: QUALITY_DEPTH });
      if (settings.rerank && !response.rerank?.reranked) notReranked++;
      deepLatency.push(performance.now() - started);
      const ranking = [...new Set(response.results.map((result) => result.documentId))];
      if (options.candidates && name === "hybrid") {
        const candidates = response.results.map((result, i) => ({
          documentId: result.documentId,
          chunkId: result.chunkId,
          fused: result.scores.fused,
          ...(i < CANDIDATE_TEXTS ? { text: result.text } : {}),
        }));
        appendFileSync(options.candidates, `${JSON.stringify({ queryId: query.id, query: query.text, candidates })}\n`);
      }
      const relevant = qrels.get(query.id) ?? new Map();
      ndcg.push(ndcgAtK(ranking, relevant, 10));
      recall.push(recallAtK(ranking, relevant, 100));
      mrr.push(mrrAtK(ranking, relevant, 10));
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
    const { p50, p95, p99 } = percentiles(latency);
    const deep = percentiles(deepLatency);
    results[name] = {
      "ndcg@10": round(mean(ndcg)),
      // By position among the evaluated queries: tune on one half, report the other.
      "ndcg@10_odd": round(mean(ndcg.filter((_, i) => i % 2 === 1))),
      "ndcg@10_even": round(mean(ndcg.filter((_, i) => i % 2 === 0))),
      "recall@100": round(mean(recall)),
      "mrr@10": round(mean(mrr)),
      latency_ms: { p50: round(p50, 1), p95: round(p95, 1), p99: round(p99, 1) },
      [`latency_ms_k${QUALITY_DEPTH}`]: { p50: round(deep.p50, 1), p95: round(deep.p95, 1), p99: round(deep.p99, 1) },
      stage_mean_ms: Object.fromEntries(
        Object.entries(stageTotals).map(([stage, total]) => [stage, round(total / Math.max(1, evaluated.length), 2)]),
      ),
      ...(settings.rerank
        ? {
            model: reranker.model,
            rerank: { topN: rerankSettings.rerankTopN, ...reranker.info, notReranked },
            ...(reranker.model.randomWeights
              ? { note: "random-weight cross-encoder: quality figures are meaningless, latency is real" }
              : {}),
          }
        : {}),
    };
  }
  const report = {
    dataset: dir,
    model: model.id,
    fusion,
    queryHalf: options.queries,
    docs,
    chunks,
    skippedDocuments: skipped.length,
    queries: evaluated.length,
    modes: results,
  };
  const columns = ["nDCG@10", "R@100", "MRR@10", "p50 ms", "p95 ms", "p99 ms", `k${QUALITY_DEPTH} p50`];
  console.log(
    `\n${"mode".padEnd(15)} ${columns.map((column) => column.padStart(9)).join(" ")}   mean ms per stage (k=10)`,
  );
  for (const [name, value] of Object.entries(results)) {
    const row = value as {
      "ndcg@10": number;
      "recall@100": number;
      "mrr@10": number;
      latency_ms: Record<string, number>;
      stage_mean_ms: Record<string, number>;
      skipped?: string;
    } & Record<string, Record<string, number>>;
    if (row.skipped) {
      console.log(`${name.padEnd(15)} skipped: ${row.skipped}`);
      continue;
    }
    const cells = [
      row["ndcg@10"],
      row["recall@100"],
      row["mrr@10"],
      row.latency_ms.p50,
      row.latency_ms.p95,
      row.latency_ms.p99,
      row[`latency_ms_k${QUALITY_DEPTH}`]?.p50,
    ];
    const stages = Object.entries(row.stage_mean_ms)
      .filter(([stage]) => stage !== "total")
      .map(([stage, ms]) => `${stage} ${ms}`)
      .join(", ");
    const halves = `nDCG@10 odd ${row["ndcg@10_odd"]} / even ${row["ndcg@10_even"]}`;
    console.log(
      `${name.padEnd(15)} ${cells.map((cell) => String(cell ?? "-").padStart(9)).join(" ")}   ${stages || "quality only"}; ${halves}`,
    );
  }
  if (reranker.model.randomWeights) {
    console.log(
      `\nhybrid+rerank used ${reranker.model.name}, a RANDOM-WEIGHT cross-encoder: its quality figures are meaningless, its latency is real.`,
    );
  }
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
}

const round = (value: number, digits = 4) => Math.round(value * 10 ** digits) / 10 ** digits;

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
