import { availableParallelism } from "node:os";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { type ModelFiles, modelFiles, requireModelFiles } from "./model-files.ts";
import { type EmbeddingModelSpec, embeddingModel, LEGACY_MODEL_ID } from "./model-registry.ts";
import { type Encoded, TextTokenizer } from "./tokenizer.ts";

/**
 * Sequences per model call. The int8 models quantize activations dynamically, with one scale per
 * call: a text embedded in a batch comes out different (cosine ~0.99) from the same text alone,
 * and a query is always embedded alone. One sequence per call keeps vectors (and reranker scores)
 * independent of their neighbours, and costs little on CPU, where a 200-token sequence already
 * fills the matrix units. Raise it (env EMBED_BATCH_SIZE / RERANK_BATCH_SIZE) for float models.
 */
export const DEFAULT_BATCH_SIZE = 1;

export interface SessionSettings {
  /** Threads for one inference (env ONNX_THREADS; default: the cores available, at most 4). */
  threads?: number;
  /** Sequences per model call (env EMBED_BATCH_SIZE / RERANK_BATCH_SIZE; default 1, see above). */
  batchSize?: number;
}

function envInt(name: string): number | undefined {
  const value = Number.parseInt(process.env[name] ?? "", 10);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/**
 * One ONNX Runtime session, made once and reused for every call. Intra-op threads default to
 * the cores available (2 here and on a 2-vCPU Lambda); more threads than cores only adds
 * contention. Inter-op parallelism is off: these graphs are a single chain of layers.
 * `disabledOptimizers` names ONNX Runtime graph transformers to leave out (see SLOW_FUSIONS).
 */
export function createSession(
  onnxPath: string,
  threads?: number,
  disabledOptimizers: readonly string[] = [],
): Promise<InferenceSession> {
  const intraOpNumThreads = threads ?? envInt("ONNX_THREADS") ?? Math.min(4, availableParallelism());
  return InferenceSession.create(onnxPath, {
    intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    ...(disabledOptimizers.length > 0
      ? { extra: { optimization: { disable_specified_optimizers: disabledOptimizers.join(";") } } }
      : {}),
  });
}

/**
 * Fusions that make BERT-style graphs slower on CPU. SkipLayerNormFusion turns a residual Add and
 * the LayerNormalization after it into one SkipLayerNormalization node, whose CPU kernel is about 6x
 * slower than the two ops it replaces (180 x 384 floats, one thread, ONNX Runtime 1.32: 445 us
 * against 77 us). Whether ONNX Runtime applies it depends on the shape information the file carries:
 * it does in the generated int8 MiniLM (quantize_dynamic records the shapes; 6 of its 13 LayerNorms),
 * where leaving it out takes 14 % off reranking (bench:rerank, top 20, one thread); it does not in the
 * Transformers.js int8 embedders. The cross-encoder leaves it out; the embedder keeps the defaults (its
 * vectors are stored in the indexes, and an int8 model's output moves a little when the fusion changes).
 */
export const SLOW_FUSIONS: readonly string[] = ["SkipLayerNormFusion"];

/**
 * Pads a batch to its longest sequence and builds the int64 tensors the session asks for
 * (input_ids, attention_mask and, when the graph has it, token_type_ids).
 */
export function batchTensors(session: InferenceSession, batch: Encoded[], padId: number): Record<string, Tensor> {
  const length = Math.max(1, ...batch.map((encoded) => encoded.ids.length));
  const ids = new BigInt64Array(batch.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(batch.length * length);
  const types = new BigInt64Array(batch.length * length);
  batch.forEach((encoded, row) => {
    const offset = row * length;
    for (let i = 0; i < encoded.ids.length; i++) {
      ids[offset + i] = BigInt(encoded.ids[i] ?? padId);
      mask[offset + i] = BigInt(encoded.attentionMask[i] ?? 0);
      types[offset + i] = BigInt(encoded.typeIds[i] ?? 0);
    }
  });
  const dims = [batch.length, length];
  const available: Record<string, Tensor> = {
    input_ids: new Tensor("int64", ids, dims),
    attention_mask: new Tensor("int64", mask, dims),
    token_type_ids: new Tensor("int64", types, dims),
  };
  const feeds: Record<string, Tensor> = {};
  for (const name of session.inputNames) {
    const tensor = available[name];
    if (!tensor) throw new Error(`model input ${name} is not one of input_ids, attention_mask, token_type_ids`);
    feeds[name] = tensor;
  }
  return feeds;
}

/**
 * Orders items by length so that each batch pads little, runs `runBatch` on consecutive slices
 * and returns the results in the original order.
 */
export async function inLengthOrderedBatches<T, R>(
  items: T[],
  lengthOf: (item: T) => number,
  batchSize: number,
  runBatch: (batch: T[]) => Promise<R[]>,
): Promise<R[]> {
  const order = items.map((_, index) => index).sort((a, b) => lengthOf(items[a] as T) - lengthOf(items[b] as T));
  const results = new Array<R>(items.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const indices = order.slice(start, start + batchSize);
    const output = await runBatch(indices.map((index) => items[index] as T));
    indices.forEach((index, i) => {
      results[index] = output[i] as R;
    });
  }
  return results;
}

/**
 * Sentence embeddings as the model wants them: its prefix in front of the text, the token vectors
 * pooled (mean over the attention mask, or the [CLS] vector), L2-normalized, so the inner product
 * of two embeddings is their cosine similarity.
 */
export class Embedder {
  private constructor(
    private readonly session: InferenceSession,
    readonly tokenizer: TextTokenizer,
    readonly dimension: number,
    private readonly batchSize: number,
    readonly model: EmbeddingModelSpec,
  ) {}

  /** The registry's model `modelId`, from `<modelDir>/<modelId>/`. */
  static forModel(modelDir: string, modelId: string, settings: SessionSettings = {}): Promise<Embedder> {
    const spec = embeddingModel(modelId);
    return Embedder.load(modelFiles(modelDir, spec.id), settings, spec);
  }

  /** Model files with a spec (default: the legacy all-MiniLM-L6-v2 int8: mean pooling, no prefixes). */
  static async load(
    files: ModelFiles,
    settings: SessionSettings = {},
    spec: EmbeddingModelSpec = embeddingModel(LEGACY_MODEL_ID),
  ): Promise<Embedder> {
    requireModelFiles(files, `embedder ${spec.id}`);
    const session = await createSession(files.onnx, settings.threads);
    const tokenizer = TextTokenizer.fromFile(files.tokenizer, spec.maxTokens);
    const batchSize = settings.batchSize ?? envInt("EMBED_BATCH_SIZE") ?? DEFAULT_BATCH_SIZE;
    const probe = new Embedder(session, tokenizer, 0, batchSize, spec);
    // The hidden size is the last output dimension; measure it once rather than trust metadata.
    const [vector] = await probe.embed(["dimension probe"]);
    const dimension = vector?.length ?? 0;
    if (dimension !== spec.dimension) {
      throw new Error(
        `embedder ${spec.id}: ${files.onnx} gives ${dimension}-d vectors, the registry says ${spec.dimension}`,
      );
    }
    return new Embedder(session, tokenizer, dimension, batchSize, spec);
  }

  /** Vectors of chunks for the index: the model's passage prefix in front of each. */
  embedPassages(texts: string[]): Promise<Float32Array[]> {
    const prefix = this.model.passagePrefix;
    return this.embed(prefix ? texts.map((text) => prefix + text) : texts);
  }

  /** The vector of a search query: the model's query prefix (or instruction) in front of it. */
  async embedQuery(text: string): Promise<Float32Array> {
    return (await this.embed([this.model.queryPrefix + text]))[0] as Float32Array;
  }

  /** One unit-length vector per text as given (no prefix), in input order, truncated to the model's window. */
  async embed(texts: string[]): Promise<Float32Array[]> {
    const encoded = texts.map((text) => this.tokenizer.encode(text));
    return inLengthOrderedBatches(
      encoded,
      (e) => e.ids.length,
      this.batchSize,
      (batch) => this.embedBatch(batch),
    );
  }

  private async embedBatch(batch: Encoded[]): Promise<Float32Array[]> {
    const feeds = batchTensors(this.session, batch, this.tokenizer.padId);
    const outputName = this.session.outputNames[0] as string;
    const output = (await this.session.run(feeds))[outputName] as Tensor;
    const data = output.data as Float32Array;
    const [rows, length, hidden] = output.dims as [number, number, number];

    // Models that already pool return [batch, hidden].
    if (output.dims.length === 2) {
      return batch.map((_, row) => normalize(data.slice(row * length, (row + 1) * length)));
    }
    if (this.model.pooling === "cls") return batch.map((_, row) => clsVector(data, row, length, hidden));
    const vectors: Float32Array[] = [];
    for (let row = 0; row < rows; row++) {
      const sum = new Float32Array(hidden);
      const mask = batch[row]?.attentionMask ?? [];
      let count = 0;
      for (let t = 0; t < length; t++) {
        if (!mask[t]) continue;
        count++;
        const offset = (row * length + t) * hidden;
        for (let h = 0; h < hidden; h++) sum[h] = (sum[h] as number) + (data[offset + h] as number);
      }
      for (let h = 0; h < hidden; h++) sum[h] = (sum[h] as number) / Math.max(1, count);
      vectors.push(normalize(sum));
    }
    return vectors;
  }
}

/** The first token's ([CLS]) hidden state of a row, normalized. */
function clsVector(data: Float32Array, row: number, length: number, hidden: number): Float32Array {
  const offset = row * length * hidden;
  return normalize(data.slice(offset, offset + hidden));
}

function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] as number) / norm;
  return vector;
}
