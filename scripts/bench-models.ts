/**
 * The embedding models side by side on this machine: `npm run bench:models -- --dataset DIR
 * [--models a,b] [--chunks N] [--json FILE]`.
 *
 * For each model, in a fresh process (so memory and cold start are its own): the time to load
 * the ONNX session and tokenizer (cold start), the process's resident memory after loading and
 * after embedding, and passage chunks per second on one intra-op thread over the same N chunks
 * of the dataset (SciFact abstracts, chunked as the pipeline chunks them). Models run one after
 * another, so the figures compare under the same load.
 */
import { fork } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { configuredEmbeddingModels, ensureModels } from "../layers/models.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import { Embedder } from "../shared/ml/embedder.ts";
import { modelFiles } from "../shared/ml/model-files.ts";
import { EMBEDDING_MODEL_IDS, parseModelList } from "../shared/ml/model-registry.ts";
import { EMBEDDER_MAX_TOKENS, embedderTokenCounter, TextTokenizer } from "../shared/ml/tokenizer.ts";
import { beirDocuments } from "./beir.ts";

interface Figures {
  model: string;
  loadMs: number;
  rssAfterLoadMb: number;
  rssAfterEmbedMb: number;
  chunksPerSecond: number;
}

async function child(modelDir: string, id: string, texts: string[]): Promise<Figures> {
  const began = performance.now();
  const embedder = await Embedder.forModel(modelDir, id, { threads: 1 });
  const loadMs = performance.now() - began;
  const rssAfterLoadMb = process.memoryUsage().rss / 2 ** 20;
  await embedder.embedPassages(texts.slice(0, 8));
  const start = performance.now();
  await embedder.embedPassages(texts);
  const seconds = (performance.now() - start) / 1000;
  return {
    model: id,
    loadMs: Math.round(loadMs),
    rssAfterLoadMb: Math.round(rssAfterLoadMb),
    rssAfterEmbedMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    chunksPerSecond: Math.round((texts.length / seconds) * 10) / 10,
  };
}

if (process.argv[2] === "bench-models-child" && process.send) {
  process.once("message", async ({ modelDir, id, texts }: { modelDir: string; id: string; texts: string[] }) => {
    process.send?.(await child(modelDir, id, texts));
  });
} else {
  const options = new Command("bench:models")
    .requiredOption("--dataset <dir>", "a BEIR-format dataset (corpus.jsonl)")
    .option("--models <ids>", `comma-separated (default: the configured ones; all: ${EMBEDDING_MODEL_IDS.join(",")})`)
    .option("--chunks <n>", "chunks to embed per model", (value) => Number(value), 300)
    .option("--json <file>", "also write the figures as JSON")
    .parse()
    .opts<{ dataset: string; models?: string; chunks: number; json?: string }>();
  const ids = options.models ? parseModelList(options.models) : configuredEmbeddingModels();
  const modelDir = await ensureModels(ids);
  // The same chunks for every model: the corpus's first documents, chunked as the pipeline does.
  const [first] = ids;
  const split = documentSplitter(
    embedderTokenCounter(TextTokenizer.fromFile(modelFiles(modelDir, first as string).tokenizer, EMBEDDER_MAX_TOKENS)),
  );
  const texts: string[] = [];
  for await (const { id, text } of beirDocuments(options.dataset)) {
    const chunks = await split(id, new TextEncoder().encode(text), "text/plain");
    texts.push(...chunks.map((chunk) => chunk.text));
    if (texts.length >= options.chunks) break;
  }
  texts.length = Math.min(texts.length, options.chunks);
  const results: Figures[] = [];
  for (const id of ids) {
    const worker = fork(fileURLToPath(import.meta.url), ["bench-models-child"], { execArgv: ["--import", "tsx"] });
    const figures = await new Promise<Figures>((resolve, reject) => {
      worker.once("message", (message: Figures) => resolve(message));
      worker.once("exit", (code) => reject(new Error(`${id}: process exited (code ${code})`)));
      worker.send({ modelDir, id, texts });
    });
    worker.kill();
    results.push(figures);
    console.log(
      `${id.padEnd(22)} cold start ${String(figures.loadMs).padStart(5)} ms   RSS ${figures.rssAfterLoadMb} MB loaded, ${figures.rssAfterEmbedMb} MB after embedding   ${figures.chunksPerSecond} chunks/s (1 thread, ${texts.length} chunks)`,
    );
  }
  if (options.json) writeFileSync(options.json, `${JSON.stringify({ chunks: texts.length, results }, null, 2)}\n`);
}
