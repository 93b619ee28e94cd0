/**
 * The cross-encoder code on generated models of the real architectures (random weights, real graphs and
 * tokenizers: layers/random_rerankers.py), loaded through the same code as a user's model.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installReranker } from "../layers/install-reranker.ts";
import { ensureModels } from "../layers/models.ts";
import { ensureRandomRerankers, type RandomRerankerName } from "../layers/random-rerankers.ts";
import type { IndexManifest } from "../shared/domain/manifest.ts";
import { sigmoid } from "../shared/domain/rerank.ts";
import { buildSegment, encodeSegment } from "../shared/domain/segment.ts";
import { EMBEDDER_NAME, modelPaths } from "../shared/ml/model-files.ts";
import { CrossEncoder, CrossEncoderLoadError } from "../shared/ml/reranker.ts";
import { hasReranker, RerankerFilesError } from "../shared/ml/reranker-files.ts";
import { SearchService, searchRequest } from "../shared/stages/search.ts";

let models: Record<RandomRerankerName, string>;
let modelsRoot: string;
const scratch = mkdtempSync(join(tmpdir(), "reranker-test-"));

beforeAll(async () => {
  // First run on a machine: a Python venv and about 30 s of building; then a cache hit.
  models = await ensureRandomRerankers();
  modelsRoot = await ensureModels();
}, 900_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const query = "how does a cross-encoder rerank search results";
const passages = [
  "A cross-encoder reads the query and a passage together and outputs a relevance score.",
  "The bakery on the corner sells sourdough bread and croissants every morning.",
  "Hybrid search combines BM25 keyword scores with dense vector similarity. ".repeat(8),
  "tiny",
  "Reciprocal rank fusion merges ranked lists by summing one over sixty plus the rank.",
];

const load = (name: RandomRerankerName, settings = {}) => CrossEncoder.load(models[name], { threads: 1, ...settings });

/** A copy of a generated model directory, to break on purpose. */
function copyOf(name: RandomRerankerName): string {
  const dir = mkdtempSync(join(scratch, `${name}-`));
  cpSync(models[name], dir, { recursive: true });
  return dir;
}

describe("recognising a cross-encoder from its files", () => {
  it("BERT-style (MiniLM-L6, Transformers.js layout): token_type_ids, one logit, 512 tokens, random weights", async () => {
    const { info, model } = await load("minilm-l6-h384");
    expect(info).toMatchObject({
      onnxFile: "onnx/model.onnx",
      inputs: ["input_ids", "attention_mask", "token_type_ids"],
      output: "logits",
      labels: 1,
      maxTokens: 512,
      batchInvariant: true,
    });
    expect(model).toEqual({ name: "random-minilm-l6-h384", randomWeights: true });
  });

  it("int8 (the Transformers.js quantized file): scores depend on the batch, so it runs one pair per call", async () => {
    const { info } = await load("minilm-l6-h384", { onnxFile: "onnx/model_quantized.onnx" });
    expect(info).toMatchObject({ onnxFile: "onnx/model_quantized.onnx", batchInvariant: false, batchSize: 1 });
  });

  it("TinyBERT-L2 (optimum layout) with one logit and with two", async () => {
    expect((await load("tinybert-l2-h128")).info).toMatchObject({ onnxFile: "model.onnx", labels: 1 });
    expect((await load("tinybert-l2-h128-2way")).info).toMatchObject({ onnxFile: "model.onnx", labels: 2 });
  });

  it("XLM-R-style: no token_type_ids, 514 positions hold 512 tokens", async () => {
    const { info } = await load("xlmr-l6-h384");
    expect(info).toMatchObject({ inputs: ["input_ids", "attention_mask"], labels: 1, maxTokens: 512 });
  });
});

describe("the generated graphs have the exports' inputs and outputs", () => {
  const cases = [
    ["minilm-l6-h384", "onnx/model.onnx", 3, 1],
    ["minilm-l6-h384", "onnx/model_quantized.onnx", 3, 1],
    ["tinybert-l2-h128", "model.onnx", 3, 1],
    ["tinybert-l2-h128-2way", "model.onnx", 3, 2],
    ["xlmr-l6-h384", "model.onnx", 2, 1],
  ] as const;
  for (const [name, file, inputs, labels] of cases) {
    it(`${name} ${file}: int64 [batch_size, sequence_length] inputs, float logits [batch_size, ${labels}]`, async () => {
      const session = await InferenceSession.create(join(models[name], file));
      expect(session.inputNames).toEqual(["input_ids", "attention_mask", "token_type_ids"].slice(0, inputs));
      for (const meta of session.inputMetadata) {
        expect(meta).toMatchObject({ isTensor: true, type: "int64", shape: ["batch_size", "sequence_length"] });
      }
      expect(session.outputMetadata).toEqual([
        expect.objectContaining({ name: "logits", isTensor: true, type: "float32", shape: ["batch_size", labels] }),
      ]);
      await session.release();
    });
  }
});

describe("pairs as the models read them", () => {
  it("BERT: [CLS] query [SEP] passage [SEP], token types 0 then 1, padding id 0", async () => {
    const { tokenizer } = await load("tinybert-l2-h128");
    const encoded = tokenizer.encodePair("what is faiss", "faiss searches vectors");
    expect(encoded.ids.map((id) => tokenizer.idToToken(id))).toEqual([
      "[CLS]",
      "what",
      "is",
      "fai",
      "##ss",
      "[SEP]",
      "fai",
      "##ss",
      "searches",
      "vectors",
      "[SEP]",
    ]);
    expect(encoded.typeIds).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(tokenizer.padId).toBe(0);
  });

  it("XLM-R: <s> query </s></s> passage </s>, Unigram pieces, unknown characters as <unk>, padding id 1", async () => {
    const { tokenizer } = await load("xlmr-l6-h384");
    const encoded = tokenizer.encodePair("what is faiss", "faiss searches vectors ✓");
    const tokens = encoded.ids.map((id) => tokenizer.idToToken(id));
    expect(tokens[0]).toBe("<s>");
    expect(tokens.filter((token) => token === "</s>")).toHaveLength(3);
    expect(tokens.at(-1)).toBe("</s>");
    expect(tokens.slice(1, tokens.indexOf("</s>")).join("")).toBe("▁what▁is▁faiss");
    expect(encoded.ids).toContain(3); // ✓ is not in the vocabulary: <unk>
    expect(encoded.typeIds.every((type) => type === 0)).toBe(true);
    expect(tokenizer.padId).toBe(1);
  });

  it("truncates a long passage to the model's length, keeping the query, before the model sees it", async () => {
    const encoder = await load("tinybert-l2-h128");
    const long = "Cross-encoders read the query and the passage together. ".repeat(200);
    const encoded = encoder.tokenizer.encodePair(query, long);
    expect(encoded.ids).toHaveLength(512);
    const queryTokens = encoder.tokenizer.tokenize(query).length;
    expect(encoded.typeIds.filter((type) => type === 0)).toHaveLength(queryTokens + 2);
    // Everything past the limit is cut: a longer tail changes nothing.
    const [cut, longer] = await encoder.relevance(query, [long, `${long} and a tail that is never read`]);
    expect(longer).toBe(cut);
  });
});

describe("scores", () => {
  for (const name of ["minilm-l6-h384", "tinybert-l2-h128-2way", "xlmr-l6-h384"] as const) {
    it(`${name}: batched scores equal one-pair-at-a-time scores, in input order`, async () => {
      const batched = await load(name, { batchSize: 8 });
      const single = await load(name, { batchSize: 1 });
      const many = await batched.relevance(query, passages);
      expect(many).toHaveLength(passages.length);
      for (const [i, passage] of passages.entries()) {
        const [alone] = await single.relevance(query, [passage]);
        expect(Math.abs((many[i] as number) - (alone as number)), passage).toBeLessThan(1e-4);
      }
      // Random weights still tell passages apart (the inputs reach the head).
      expect(new Set(many.map((score) => score.toFixed(6))).size).toBe(passages.length);
    });
  }

  it("int8: a pair's score does not depend on the other passages", async () => {
    const encoder = await load("minilm-l6-h384", { onnxFile: "onnx/model_quantized.onnx" });
    const all = await encoder.relevance(query, passages);
    for (const [i, passage] of passages.entries()) expect(await encoder.relevance(query, [passage])).toEqual([all[i]]);
  });

  it("two logits: the relevance is label 1's logit minus label 0's, so its sigmoid is the softmax of label 1", async () => {
    const encoder = await load("tinybert-l2-h128-2way");
    const [relevance] = await encoder.relevance(query, [passages[0] as string]);
    const session = await InferenceSession.create(join(models["tinybert-l2-h128-2way"], "model.onnx"));
    const encoded = encoder.tokenizer.encodePair(query, passages[0] as string);
    const tensor = (values: number[]) =>
      new Tensor("int64", BigInt64Array.from(values.map(BigInt)), [1, values.length]);
    const { logits } = await session.run({
      input_ids: tensor(encoded.ids),
      attention_mask: tensor(encoded.attentionMask),
      token_type_ids: tensor(encoded.typeIds),
    });
    const [l0, l1] = Array.from(logits?.data as Float32Array);
    expect(relevance).toBeCloseTo((l1 as number) - (l0 as number), 5);
    const softmax = Math.exp(l1 as number) / (Math.exp(l0 as number) + Math.exp(l1 as number));
    expect(sigmoid(relevance as number)).toBeCloseTo(softmax, 6);
  });

  it("an aborted signal stops before the next batch", async () => {
    const encoder = await load("tinybert-l2-h128", { batchSize: 1 });
    const controller = new AbortController();
    controller.abort();
    await expect(encoder.relevance(query, passages, controller.signal)).rejects.toThrow();
  });
});

describe("models that cannot work fail at load, saying why", () => {
  it("an embedding model (output [batch, sequence, hidden])", async () => {
    const dir = join(scratch, "embedder");
    cpSync(join(modelsRoot, EMBEDDER_NAME), dir, { recursive: true });
    await expect(CrossEncoder.load(dir)).rejects.toThrow(/embedding model/);
  });

  it("a tokenizer from another model (ids beyond the embedding table)", async () => {
    const dir = copyOf("xlmr-l6-h384");
    cpSync(join(models["tinybert-l2-h128"], "tokenizer.json"), join(dir, "tokenizer.json"));
    const attempt = CrossEncoder.load(dir);
    await expect(attempt).rejects.toThrow(CrossEncoderLoadError);
    await expect(attempt).rejects.toThrow(/ids up to 30521.*another model/);
  });

  it("a config claiming more positions than the model has", async () => {
    const dir = copyOf("tinybert-l2-h128");
    for (const [file, key] of [
      ["config.json", "max_position_embeddings"],
      ["tokenizer_config.json", "model_max_length"],
    ] as const) {
      const json = JSON.parse(readFileSync(join(dir, file), "utf8"));
      json[key] = 1024;
      writeFileSync(join(dir, file), JSON.stringify(json));
    }
    await expect(CrossEncoder.load(dir)).rejects.toThrow(/1024-token pair.*RERANK_MAX_TOKENS/s);
    // Told to stay within the real table, it loads.
    expect((await CrossEncoder.load(dir, { maxTokens: 512 })).info.maxTokens).toBe(512);
  });

  it("a directory without tokenizer.json, without an ONNX file, or with a corrupt one", async () => {
    const noTokenizer = copyOf("tinybert-l2-h128");
    rmSync(join(noTokenizer, "tokenizer.json"));
    await expect(CrossEncoder.load(noTokenizer)).rejects.toThrow(RerankerFilesError);
    const noOnnx = copyOf("tinybert-l2-h128");
    rmSync(join(noOnnx, "model.onnx"));
    await expect(CrossEncoder.load(noOnnx)).rejects.toThrow(/has no ONNX model/);
    const corrupt = copyOf("tinybert-l2-h128");
    writeFileSync(join(corrupt, "model.onnx"), "not a model");
    await expect(CrossEncoder.load(corrupt)).rejects.toThrow(/cannot load the cross-encoder/);
  });
});

describe("search with a cross-encoder", () => {
  const topics = [
    "glaciers carve valleys in the mountains",
    "volcanoes erupt lava and ash",
    "glaciers retreat as the climate warms",
    "rivers carry sediment to the sea",
    "glaciers store most of the fresh water",
    "deserts receive little rain",
  ];
  const segment = encodeSegment(
    buildSegment(
      "s",
      topics.map((text, i) => ({
        chunkId: `d${i}:0`,
        documentId: `d${i}`,
        ordinal: 0,
        page: 1,
        start: 0,
        end: text.length,
        text,
        collection: "c",
        vector: [Math.cos(i), Math.sin(i), 0, 0],
      })),
      new Map(topics.map((_, i) => [`d${i}`, { documentId: `d${i}`, collection: "c", contentType: "text/plain" }])),
    ),
  );
  const manifest: IndexManifest = {
    tenant: "t",
    collection: "c",
    index: "1",
    version: 1,
    segments: [{ id: "s", key: "s", chunks: topics.length, bytes: segment.length, createdAt: "2026-01-01T00:00:00Z" }],
    tombstones: [],
  };
  const service = (reranker?: CrossEncoder) =>
    new SearchService({
      manifests: { get: async () => manifest },
      blobs: { read: async () => segment },
      embed: async () => new Float32Array([1, 0, 0, 0]),
      ...(reranker ? { reranker } : {}),
    });
  const search = (reranker: CrossEncoder | undefined, request: Record<string, unknown>) =>
    service(reranker).search("t", searchRequest.parse({ query: "glaciers water", collection: "c", k: 6, ...request }));

  it("orders the reranked results by the combined score and shows both scores", async () => {
    const encoder = await load("minilm-l6-h384");
    const response = await search(encoder, { rerankTopN: 6, rerankWeight: 0.7 });
    expect(response.rerank).toMatchObject({
      reranked: true,
      model: { name: "random-minilm-l6-h384", randomWeights: true },
      weight: 0.7,
      method: "interpolate",
      candidates: 6,
    });
    const scores = response.results.map((result) => result.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const result of response.results) {
      expect(result.score).toBe(result.scores.combined);
      expect(result.scores.rerank).toBeGreaterThan(0);
      expect(result.scores.rerank).toBeLessThan(1);
      expect(result.scores.fused).toBeTypeOf("number");
    }
    expect(response.timings.rerank).toBeGreaterThan(0);
    // Weight 0 keeps the fused order exactly.
    const fusedOnly = await search(undefined, { rerank: false });
    const weightZero = await search(encoder, { rerankTopN: 6, rerankWeight: 0 });
    expect(weightZero.results.map((r) => r.chunkId)).toEqual(fusedOnly.results.map((r) => r.chunkId));
  });

  it("past the deadline, answers in fused order and says so", async () => {
    const encoder = await load("minilm-l6-h384", { batchSize: 1 });
    const fusedOnly = await search(undefined, { rerank: false });
    const response = await search(encoder, { rerankTopN: 6, rerankDeadlineMs: 1 });
    expect(response.rerank).toMatchObject({ reranked: false, reason: "deadline", deadlineMs: 1, candidates: 6 });
    expect(response.results.map((r) => r.chunkId)).toEqual(fusedOnly.results.map((r) => r.chunkId));
    expect(response.results.every((r) => r.scores.rerank === undefined && r.score === r.scores.fused)).toBe(true);
  });

  it("without a model, or turned off, says why", async () => {
    expect((await search(undefined, {})).rerank).toMatchObject({ reranked: false, reason: "no-model" });
    expect((await search(await load("tinybert-l2-h128"), { rerank: false })).rerank).toMatchObject({
      reranked: false,
      reason: "disabled",
      model: { name: "random-tinybert-l2-h128" },
    });
  });
});

describe("npm run models -- --reranker DIR", () => {
  it("installs the chosen ONNX file and the tokenizer files as <models>/reranker, where search finds them", async () => {
    const root = mkdtempSync(join(scratch, "models-"));
    const target = await installReranker(models["minilm-l6-h384"], root, {
      onnx: "onnx/model_quantized.onnx",
      name: "ms-marco-MiniLM-L-6-v2 (random)",
    });
    expect(target).toBe(modelPaths(root).reranker);
    expect(hasReranker(target)).toBe(true);
    expect(existsSync(join(target, "onnx", "model_quantized.onnx"))).toBe(true);
    expect(existsSync(join(target, "onnx", "model.onnx"))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(target, "reranker.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "ms-marco-MiniLM-L-6-v2 (random)", onnx: "onnx/model_quantized.onnx" });
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    const installed = await CrossEncoder.load(target, { threads: 1 });
    expect(installed.info).toMatchObject({ onnxFile: "onnx/model_quantized.onnx", batchSize: 1 });
    expect(installed.model).toEqual({ name: "ms-marco-MiniLM-L-6-v2 (random)", randomWeights: true });
  });

  it("refuses a model that would not work and leaves the installed one in place", async () => {
    const root = mkdtempSync(join(scratch, "models-"));
    await installReranker(models["tinybert-l2-h128"], root);
    const broken = copyOf("xlmr-l6-h384");
    cpSync(join(models["tinybert-l2-h128"], "tokenizer.json"), join(broken, "tokenizer.json"));
    await expect(installReranker(broken, root)).rejects.toThrow(CrossEncoderLoadError);
    expect((await CrossEncoder.load(modelPaths(root).reranker)).model.name).toBe("random-tinybert-l2-h128");
  });
});
