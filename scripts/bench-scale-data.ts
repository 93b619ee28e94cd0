/**
 * The chunks `bench:scale` indexes: a base set of real chunks (a BEIR dataset split by the split stage's
 * chunker, with the evaluation's cached embeddings) or synthetic ones, replicated under new ids until the
 * collection has N chunks. Replica r > 0 of a chunk has the id `r<r>-<chunk id>`, the text tagged with
 * ` r<r>` and the vector perturbed (Gaussian noise, σ = 0.02 per dimension: cosine ≈ 0.93 with the
 * original) and renormalised, so replicas are near neighbours, not copies. Everything is deterministic.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureModels } from "../layers/models.ts";
import { cacheDir } from "../localstack/servers/paths.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import type { DocumentInfo, EmbeddedChunk } from "../shared/domain/types.ts";
import { Embedder } from "../shared/ml/embedder.ts";
import { modelPaths } from "../shared/ml/model-files.ts";
import { embedderTokenCounter } from "../shared/ml/tokenizer.ts";
import { beirDocuments, beirQrels, jsonLines } from "./beir.ts";
import { EmbeddingCache } from "./eval-cache.ts";
import { rng } from "./seeded-random.ts";

export interface BaseChunk {
  chunkId: string;
  documentId: string;
  ordinal: number;
  page: number;
  start: number;
  end: number;
  text: string;
  vector: Float32Array;
}

export interface BenchQuery {
  text: string;
  vector: number[];
}

export interface BenchData {
  /** What the data is, for cache keys and reports. */
  name: string;
  base: BaseChunk[];
  queries: BenchQuery[];
  dimension: number;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
}

const NOISE = 0.02;

/** Chunk `index` of the replicated stream (replica-major), for collection `collection`. */
export function chunkAt(
  data: BenchData,
  index: number,
  collection: string,
): { chunk: EmbeddedChunk; info: DocumentInfo } {
  const base = data.base[index % data.base.length] as BaseChunk;
  const replica = Math.floor(index / data.base.length);
  const info: DocumentInfo = {
    documentId: replica === 0 ? base.documentId : `r${replica}-${base.documentId}`,
    collection,
    contentType: "text/plain",
  };
  if (replica === 0) {
    return { chunk: { ...base, documentId: info.documentId, collection, vector: base.vector }, info };
  }
  const random = rng(index * 2654435761);
  const vector = new Float32Array(base.vector.length);
  let norm = 0;
  for (let j = 0; j < vector.length; j += 1) {
    const value = (base.vector[j] as number) + NOISE * gaussian(random);
    vector[j] = value;
    norm += value * value;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let j = 0; j < vector.length; j += 1) vector[j] = (vector[j] as number) * scale;
  return {
    chunk: {
      chunkId: `r${replica}-${base.chunkId}`,
      documentId: info.documentId,
      ordinal: base.ordinal,
      page: base.page,
      start: base.start,
      end: base.end,
      text: `${base.text} r${replica}`,
      collection,
      vector,
    },
    info,
  };
}

/**
 * A BEIR dataset's chunks with their embeddings (from the evaluation's cache; chunks not cached yet are
 * embedded and added to it) and its test queries with theirs (cached too).
 */
export async function datasetData(dir: string, log: (line: string) => void): Promise<BenchData> {
  for (const file of ["corpus.jsonl", "queries.jsonl", join("qrels", "test.tsv")]) {
    if (!existsSync(join(dir, file))) throw new Error(`${join(dir, file)} not found: --dataset must be a BEIR dataset`);
  }
  const models = modelPaths(await ensureModels());
  const embedder = await Embedder.load(models.embedder);
  const split = documentSplitter(embedderTokenCounter(embedder.tokenizer));
  const cache = new EmbeddingCache(dir, embedder.model, models.embedder.onnx);
  const base: BaseChunk[] = [];
  let documents = 0;
  for await (const { id: documentId, text } of beirDocuments(dir)) {
    const chunks = await split(documentId, new TextEncoder().encode(text), "text/plain");
    const vectors = await cache.embed(
      chunks.map((chunk) => chunk.text),
      (missing) => embedder.embed(missing),
    );
    chunks.forEach((chunk, i) => {
      base.push({ ...chunk, vector: vectors[i] as Float32Array });
    });
    documents += 1;
    if (documents % 1000 === 0) log(`base chunks: ${documents} documents, ${base.length} chunks`);
  }
  cache.save();
  const tested = await beirQrels(dir);
  const texts: string[] = [];
  for await (const query of jsonLines(join(dir, "queries.jsonl")))
    if (tested.has(String(query._id))) texts.push(String(query.text));
  const tag = createHash("sha1")
    .update(`${cache.file}\n${texts.join("\n")}`)
    .digest("hex")
    .slice(0, 12);
  const queryFile = join(cacheDir, "bench-scale", `queries-${tag}.json`);
  let queries: BenchQuery[];
  if (existsSync(queryFile)) queries = JSON.parse(readFileSync(queryFile, "utf8")) as BenchQuery[];
  else {
    queries = [];
    for (const text of texts)
      queries.push({ text, vector: Array.from((await embedder.embed([text]))[0] as Float32Array) });
    mkdirSync(join(cacheDir, "bench-scale"), { recursive: true });
    writeFileSync(queryFile, JSON.stringify(queries));
  }
  const name = `${dir.replace(/\/+$/, "").split("/").at(-1)}-${createHash("sha1").update(cache.file).digest("hex").slice(0, 8)}`;
  return { name, base, queries, dimension: embedder.dimension };
}

/**
 * Synthetic chunks: 200 topics, each a random unit direction and a Zipf-weighted slice of a 20,000-word
 * vocabulary; a chunk is 80 words mostly from its topic and a vector near the topic's direction. Queries
 * are 6 words and a perturbed vector of a random chunk.
 */
export function syntheticData(baseChunks = 16_384, dimension = 384): BenchData {
  const random = rng(42);
  const vocabulary = Array.from({ length: 20_000 }, (_, i) => `w${i.toString(36)}`);
  const topics = Array.from({ length: 200 }, () => {
    const direction = Float32Array.from({ length: dimension }, () => gaussian(random));
    const start = Math.floor(random() * (vocabulary.length - 500));
    return { direction, start };
  });
  const zipf = () => Math.floor(500 * random() ** 3);
  const base: BaseChunk[] = [];
  for (let i = 0; i < baseChunks; i += 1) {
    const topic = topics[Math.floor(random() * topics.length)] as (typeof topics)[number];
    const words = Array.from({ length: 80 }, () =>
      random() < 0.8
        ? (vocabulary[topic.start + zipf()] as string)
        : (vocabulary[Math.floor(random() * vocabulary.length)] as string),
    );
    const vector = Float32Array.from(topic.direction, (x) => x + 1.5 * gaussian(random));
    const norm = Math.hypot(...vector);
    for (let j = 0; j < dimension; j += 1) vector[j] = (vector[j] as number) / norm;
    const documentId = `s${Math.floor(i / 2)}`;
    const text = words.join(" ");
    base.push({
      chunkId: `${documentId}:${i % 2}`,
      documentId,
      ordinal: i % 2,
      page: 1,
      start: 0,
      end: text.length,
      text,
      vector,
    });
  }
  const queries: BenchQuery[] = Array.from({ length: 200 }, () => {
    const chunk = base[Math.floor(random() * base.length)] as BaseChunk;
    const words = chunk.text.split(" ");
    const text = Array.from({ length: 6 }, () => words[Math.floor(random() * words.length)]).join(" ");
    const vector = Array.from(chunk.vector, (x) => x + 0.03 * gaussian(random));
    return { text, vector };
  });
  return { name: `synthetic-${baseChunks}`, base, queries, dimension };
}
