import { beforeAll, describe, expect, it } from "vitest";
import { configuredEmbeddingModels, ensureModels } from "../layers/models.ts";
import { Embedder } from "../shared/ml/embedder.ts";
import { type ModelPaths, modelPaths } from "../shared/ml/model-files.ts";
import { embeddingModel } from "../shared/ml/model-registry.ts";
import { TextTokenizer } from "../shared/ml/tokenizer.ts";

let paths: ModelPaths;
let embedder: Embedder;

beforeAll(async () => {
  // On a fresh machine this resolves the model jars with mvn (minutes at most); then it is a
  // checksum check.
  process.env.MODEL_DIR = await ensureModels();
  paths = modelPaths();
  embedder = await Embedder.load(paths.embedder);
}, 600_000);

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, value, i) => sum + value * (b[i] as number), 0);

const passage =
  "Hybrid search combines BM25 keyword scores with dense vector similarity, then a cross-encoder " +
  "reranks the best candidates by reading the query and each passage together. ";

describe("tokenizer", () => {
  let tokenizer: TextTokenizer;
  beforeAll(() => {
    tokenizer = TextTokenizer.fromFile(paths.embedder.tokenizer, 256);
  });

  it("encodes a pair as [CLS] query [SEP] passage [SEP] with token type ids", () => {
    const encoded = tokenizer.encodePair("what is faiss", "faiss searches vectors");
    const tokens = encoded.ids.map((id) => tokenizer.idToToken(id));
    expect(tokens).toEqual([
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
    expect(encoded.attentionMask.every((value) => value === 1)).toBe(true);
  });

  it("truncates to the maximum length, keeping the closing [SEP]", () => {
    const long = passage.repeat(20);
    expect(tokenizer.countTokens(long)).toBeGreaterThan(256);
    const single = tokenizer.encode(long);
    expect(single.ids).toHaveLength(256);
    expect(tokenizer.idToToken(single.ids.at(-1) ?? -1)).toBe("[SEP]");

    // Longest-first: the short query survives whole, the passage is cut.
    const pair = TextTokenizer.fromFile(paths.embedder.tokenizer, 512).encodePair("what is hybrid search", long);
    expect(pair.ids).toHaveLength(512);
    expect(pair.typeIds.filter((type) => type === 0)).toHaveLength(1 + 4 + 1);
  });

  it("counts tokens and maps them back to character offsets", () => {
    const text = "Crème brûlée costs 12.50€ at the café — “délicieux”!";
    const spans = tokenizer.tokenSpans(text);
    expect(spans).toHaveLength(tokenizer.countTokens(text));
    for (const span of spans) {
      const piece = span.token.replace(/^##/, "");
      if (span.token === "[UNK]") continue;
      // Offsets point at the original (accented, cased) characters the piece came from.
      expect(
        text
          .slice(span.start, span.end)
          .normalize("NFD")
          .replace(/\p{Mn}/gu, "")
          .toLowerCase(),
      ).toBe(piece);
    }
    // In order and not overlapping.
    for (const [i, span] of spans.entries()) expect(span.start).toBeGreaterThanOrEqual(spans[i - 1]?.end ?? 0);
  });
});

describe("embedder", () => {
  it("returns 384-dimensional unit vectors", async () => {
    expect(embedder.dimension).toBe(384);
    const [vector] = await embedder.embed(["FAISS indexes dense vectors."]);
    expect(vector).toHaveLength(384);
    expect(Math.sqrt(cosine(vector as Float32Array, vector as Float32Array))).toBeCloseTo(1, 5);
  });

  it("puts a paraphrase closer than an unrelated sentence", async () => {
    const [query, paraphrase, unrelated] = await embedder.embed([
      "How do I reset my password?",
      "What are the steps to change a forgotten password?",
      "The recipe needs two cups of flour and an egg.",
    ]);
    const close = cosine(query as Float32Array, paraphrase as Float32Array);
    const far = cosine(query as Float32Array, unrelated as Float32Array);
    expect(close).toBeGreaterThan(far + 0.3);
  });

  it("gives the same vector for a text whatever else is embedded with it", async () => {
    const texts = ["short", "a somewhat longer sentence about vector search", passage, passage.repeat(3), "ok"];
    const together = await embedder.embed(texts);
    for (const [i, text] of texts.entries()) {
      const [alone] = await embedder.embed([text]);
      expect(maxDifference(alone as Float32Array, together[i] as Float32Array)).toBeLessThan(1e-4);
    }
  });

  it("masks padding when several texts share one model call", async () => {
    // Batches of 8: the short texts are padded to the longest. Mean pooling ignores the padding
    // (with the float model the vectors come out bit-identical); what differs here is the int8
    // model's activation quantization, computed once per call over the padded batch.
    const batching = await Embedder.load(paths.embedder, { batchSize: 8 });
    const texts = ["short", "a somewhat longer sentence about vector search", passage.repeat(3)];
    const together = await batching.embed(texts);
    for (const [i, text] of texts.entries()) {
      const [alone] = await embedder.embed([text]);
      expect(cosine(alone as Float32Array, together[i] as Float32Array)).toBeGreaterThan(0.95);
    }
    // Identical texts need no padding and share the quantization: exactly the single result.
    const [a, b] = await batching.embed([texts[1] as string, texts[1] as string]);
    const [alone] = await embedder.embed([texts[1] as string]);
    expect(maxDifference(alone as Float32Array, a as Float32Array)).toBe(0);
    expect(maxDifference(alone as Float32Array, b as Float32Array)).toBe(0);
  });
});

function maxDifference(a: Float32Array, b: Float32Array): number {
  return Math.max(...a.map((value, i) => Math.abs(value - (b[i] ?? Number.NaN))));
}

describe("the embedding-model registry", () => {
  // The models the stack is configured with (cdk.json's embeddingModels), fetched above.
  const configured = configuredEmbeddingModels();

  it.each(configured)("%s: the registry's dimension, its prefixes and pooling, unit vectors, relevance", async (id) => {
    const spec = embeddingModel(id);
    const model = await Embedder.forModel(process.env.MODEL_DIR as string, id, { threads: 1 });
    expect(model.dimension).toBe(spec.dimension);
    expect(model.model.id).toBe(id);
    const query = await model.embedQuery("how are search results reranked?");
    const [relevant, unrelated] = await model.embedPassages([
      passage,
      "Volcanoes erupt when magma reaches the surface.",
    ]);
    expect(Math.abs(cosine(query, query) - 1)).toBeLessThan(1e-4);
    expect(cosine(query, relevant as Float32Array)).toBeGreaterThan(cosine(query, unrelated as Float32Array) + 0.05);
    // The query gets the model's prefix: with one, the vector differs from the bare text's.
    const [bare] = await model.embed(["how are search results reranked?"]);
    if (spec.queryPrefix) expect(cosine(query, bare as Float32Array)).toBeLessThan(0.999);
    else expect(cosine(query, bare as Float32Array)).toBeCloseTo(1, 5);
  });

  it("CLS pooling takes the first token's state, mean pooling the average: two models, two different vectors", async () => {
    const cls = configured.find((id) => embeddingModel(id).pooling === "cls");
    if (!cls) return;
    const spec = embeddingModel(cls);
    const asCls = await Embedder.forModel(process.env.MODEL_DIR as string, cls, { threads: 1 });
    const asMean = await Embedder.load(
      {
        onnx: `${process.env.MODEL_DIR}/${cls}/model.onnx`,
        tokenizer: `${process.env.MODEL_DIR}/${cls}/tokenizer.json`,
      },
      { threads: 1 },
      { ...spec, pooling: "mean" },
    );
    const [a] = await asCls.embed([passage]);
    const [b] = await asMean.embed([passage]);
    expect(cosine(a as Float32Array, b as Float32Array)).toBeLessThan(0.99);
  });

  it("refuses an unknown model id, naming the supported ones", () => {
    expect(() => embeddingModel("gpt-embeddings")).toThrow(/supported are .*bge-small-en-v1\.5-q/);
  });
});
