import { readFileSync } from "node:fs";
import { type InferenceSession, Tensor } from "onnxruntime-node";
import type { CrossEncoderModel, CrossEncoderPort } from "../domain/rerank.ts";
import { createSession, SLOW_FUSIONS } from "./embedder.ts";
import { locateReranker, maxTokensOf, onnxRelative, type RerankerFiles } from "./reranker-files.ts";
import { type Encoded, TextTokenizer } from "./tokenizer.ts";

/**
 * A cross-encoder: reads a (query, passage) pair and returns how relevant the passage is.
 *
 * What kind of model it is comes from the files, not from its name: the ONNX graph's inputs (input_ids and
 * attention_mask, plus token_type_ids for BERT-style models such as the ms-marco MiniLM and TinyBERT
 * cross-encoders; XLM-RoBERTa-style models such as bge-reranker-base have none), its output (logits
 * [batch, 1] scored with a sigmoid, or [batch, 2] with a softmax whose label 1 means relevant), and
 * tokenizer.json's pair template ([CLS] q [SEP] p [SEP] or <s> q </s></s> p </s>). The maximum length is
 * the model's own (see maxTokensOf). Loading runs the model on probe pairs, so a model that cannot work
 * (wrong inputs or outputs, a tokenizer from another model, a length its position table cannot hold) fails
 * at load with a message that says why, never later during a search.
 */
export class CrossEncoderLoadError extends Error {
  override name = "CrossEncoderLoadError";
}

export interface CrossEncoderSettings {
  /** Intra-op threads (env ONNX_THREADS; default: the cores available, at most 4). */
  threads?: number;
  /** Pairs per model call (env RERANK_BATCH_SIZE); default 4, or 1 for models whose scores depend on the batch. */
  batchSize?: number;
  /** A lower maximum length than the model's (env RERANK_MAX_TOKENS). */
  maxTokens?: number;
  /** The ONNX file to use when the directory holds several (relative path, e.g. onnx/model_quantized.onnx). */
  onnxFile?: string;
  /** ONNX Runtime graph transformers to leave out (default SLOW_FUSIONS; [] for ONNX Runtime's full set). */
  disabledOptimizers?: readonly string[];
}

export interface CrossEncoderInfo extends CrossEncoderModel {
  /** The ONNX file loaded, relative to the model directory. */
  onnxFile: string;
  /** The graph's inputs, in the order it declares them. */
  inputs: string[];
  /** The output read and its width: 1 (sigmoid) or 2 (softmax, label 1 = relevant). */
  output: string;
  labels: 1 | 2;
  /** Longest pair in tokens, special tokens included. */
  maxTokens: number;
  batchSize: number;
  /**
   * False when a pair scores differently alone and in a batch beyond float rounding: int8 models quantize
   * activations with one scale per call. Such a model then runs one pair per call so that scores never
   * depend on their neighbours.
   */
  batchInvariant: boolean;
}

const KNOWN_INPUTS = ["input_ids", "attention_mask", "token_type_ids"] as const;
/**
 * Pairs per model call for float models. On CPU a ~170-token pair already fills the matrix units, so larger
 * batches only add padding: measured on 20 SciFact-length pairs (MiniLM-L6, one thread), 4 per call cost the
 * same CPU as 1, 8 cost 15 % more and 20 cost 55 % more. Batches also bound how long the deadline waits.
 */
const DEFAULT_BATCH = 4;

function envInt(name: string): number | undefined {
  const value = Number.parseInt(process.env[name] ?? "", 10);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

export class CrossEncoder implements CrossEncoderPort {
  private constructor(
    private readonly session: InferenceSession,
    readonly tokenizer: TextTokenizer,
    readonly info: CrossEncoderInfo,
    private readonly inputTypes: Record<string, "int64" | "int32">,
  ) {}

  get model(): CrossEncoderModel {
    return { name: this.info.name, randomWeights: this.info.randomWeights };
  }

  /** Loads and checks the cross-encoder in `dir` (see reranker-files.ts for the layouts it accepts). */
  static async load(dir: string, settings: CrossEncoderSettings = {}): Promise<CrossEncoder> {
    const files = locateReranker(dir, settings.onnxFile ?? process.env.RERANK_ONNX_FILE);
    const where = `${files.dir} (${onnxRelative(files)})`;
    let session: InferenceSession;
    try {
      session = await createSession(files.onnx, settings.threads, settings.disabledOptimizers ?? SLOW_FUSIONS);
    } catch (error) {
      throw new CrossEncoderLoadError(`cannot load the cross-encoder ${where}: ${(error as Error).message}`);
    }

    // Inputs: BERT-style (with token_type_ids) or XLM-R-style (without); anything else is not a text cross-encoder.
    const inputTypes: Record<string, "int64" | "int32"> = {};
    for (const meta of session.inputMetadata) {
      if (!(KNOWN_INPUTS as readonly string[]).includes(meta.name)) {
        throw new CrossEncoderLoadError(
          `the cross-encoder ${where} has an input "${meta.name}": a text cross-encoder takes ${KNOWN_INPUTS.join(", ")}`,
        );
      }
      const type = meta.isTensor ? meta.type : undefined;
      if (type !== "int64" && type !== "int32") {
        throw new CrossEncoderLoadError(`the cross-encoder ${where} input ${meta.name} is ${type}, not int64 or int32`);
      }
      inputTypes[meta.name] = type;
    }
    for (const required of ["input_ids", "attention_mask"]) {
      if (!inputTypes[required]) {
        throw new CrossEncoderLoadError(`the cross-encoder ${where} has no ${required} input`);
      }
    }

    // Output: `logits`, or the only output there is.
    const outputs = session.outputMetadata;
    const output = outputs.find((meta) => meta.name === "logits") ?? (outputs.length === 1 ? outputs[0] : undefined);
    if (!output) {
      throw new CrossEncoderLoadError(
        `the cross-encoder ${where} has outputs ${outputs.map((meta) => meta.name).join(", ")} and none named logits`,
      );
    }
    if (output.isTensor && output.shape.length > 0 && output.shape.length !== 2) {
      throw new CrossEncoderLoadError(
        `the cross-encoder ${where} output ${output.name} has shape [${output.shape.join(", ")}]; a cross-encoder ` +
          "gives logits [batch, 1 or 2] (a [batch, sequence, hidden] output is an embedding model's)",
      );
    }

    const tokenizerJson = JSON.parse(readFileSync(files.tokenizer, "utf8"));
    const modelMax = maxTokensOf(files, tokenizerJson);
    const maxTokens = Math.min(modelMax, settings.maxTokens ?? envInt("RERANK_MAX_TOKENS") ?? modelMax);
    const tokenizer = new TextTokenizer(tokenizerJson, maxTokens);
    if (!tokenizer.hasPairTemplate) {
      throw new CrossEncoderLoadError(
        `${files.tokenizer} has no post_processor, so it cannot frame a (query, passage) pair with the model's special tokens`,
      );
    }

    const draft: CrossEncoderInfo = {
      name: files.name,
      randomWeights: files.randomWeights,
      onnxFile: onnxRelative(files),
      inputs: session.inputNames.slice(),
      output: output.name,
      labels: 1,
      maxTokens,
      batchSize: 1,
      batchInvariant: true,
    };
    const encoder = new CrossEncoder(session, tokenizer, draft, inputTypes);
    return encoder.probe(files, settings.batchSize ?? envInt("RERANK_BATCH_SIZE"));
  }

  /**
   * Runs the model on a short pair, on a pair at the maximum length holding the tokenizer's largest id,
   * and on both as one batch: checks the output, the length and the vocabulary, and whether batching
   * changes scores.
   */
  private async probe(files: RerankerFiles, batchSize: number | undefined): Promise<CrossEncoder> {
    const where = `${files.dir} (${onnxRelative(files)})`;
    const short = this.tokenizer.encodePair("probe query", "a short probe passage");
    const long = this.tokenizer.encodePair("probe query", "probe passage ".repeat(this.info.maxTokens));
    // The longest pair also carries the largest id the tokenizer can produce: a tokenizer from another model
    // (a bigger vocabulary than the embedding table) fails here rather than on some rare word later.
    long.ids[1] = this.tokenizer.maxTokenId;
    const run = async (batch: Encoded[], what: string) => {
      try {
        const { data, dims } = await this.runBatch(batch);
        return { data, dims };
      } catch (error) {
        const message = (error as Error).message;
        // An embedding-table lookup out of range: the tokenizer's ids do not fit this model.
        const hint = /Gather[\s\S]*out of (data )?bounds/i.test(message)
          ? ` (tokenizer.json, with ids up to ${this.tokenizer.maxTokenId}, may belong to another model)`
          : "";
        throw new CrossEncoderLoadError(`the cross-encoder ${where} failed on ${what}: ${message}${hint}`);
      }
    };
    const alone = await run([short], "a short pair");
    const [rows, labels] = alone.dims;
    if (alone.dims.length !== 2 || rows !== 1 || (labels !== 1 && labels !== 2)) {
      throw new CrossEncoderLoadError(
        `the cross-encoder ${where} output ${this.info.output} is [${alone.dims.join(", ")}] for one pair; ` +
          "expected [1, 1] (one logit) or [1, 2] (two-way softmax)",
      );
    }
    await run(
      [long],
      `a ${long.ids.length}-token pair holding token id ${this.tokenizer.maxTokenId} (the tokenizer may belong to another model, or the model may take fewer tokens than its config says: set RERANK_MAX_TOKENS)`,
    );
    const both = await run([short, long], "a batch of two pairs");
    const tolerance = 1e-4 * Math.max(1, ...Array.from(alone.data, Math.abs));
    let batchInvariant = true;
    for (let label = 0; label < labels; label++) {
      if (Math.abs((both.data[label] as number) - (alone.data[label] as number)) > tolerance) batchInvariant = false;
    }
    for (const value of [...alone.data, ...both.data]) {
      if (!Number.isFinite(value)) throw new CrossEncoderLoadError(`the cross-encoder ${where} gives ${value} scores`);
    }
    const info: CrossEncoderInfo = {
      ...this.info,
      labels,
      batchInvariant,
      batchSize: batchSize ?? (batchInvariant ? DEFAULT_BATCH : 1),
    };
    return new CrossEncoder(this.session, this.tokenizer, info, this.inputTypes);
  }

  /**
   * One relevance logit per passage, in input order: the logit of a one-logit model, or label 1's minus
   * label 0's for a two-way model (so a sigmoid of it is the softmax probability of "relevant"). Pairs are
   * truncated to the model's maximum length, longest part first (the query keeps its tokens unless it is
   * the longer one), and scored in batches of similar length. An aborted signal stops before the next batch.
   */
  async relevance(query: string, passages: readonly string[], signal?: AbortSignal): Promise<number[]> {
    const encoded = passages.map((passage) => this.tokenizer.encodePair(query, passage));
    const order = encoded
      .map((_, i) => i)
      .sort((a, b) => (encoded[a]?.ids.length ?? 0) - (encoded[b]?.ids.length ?? 0));
    const logits = new Array<number>(passages.length);
    for (let start = 0; start < order.length; start += this.info.batchSize) {
      signal?.throwIfAborted();
      const indices = order.slice(start, start + this.info.batchSize);
      const { data, dims } = await this.runBatch(indices.map((i) => encoded[i] as Encoded));
      const width = dims[1] ?? 1;
      indices.forEach((index, row) => {
        const first = data[row * width] as number;
        logits[index] = width === 2 ? (data[row * width + 1] as number) - first : first;
      });
    }
    return logits;
  }

  private async runBatch(batch: Encoded[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
    const length = Math.max(1, ...batch.map((encoded) => encoded.ids.length));
    const pad = this.tokenizer.padId;
    const columns: Record<string, (encoded: Encoded, i: number) => number> = {
      input_ids: (encoded, i) => encoded.ids[i] ?? pad,
      attention_mask: (encoded, i) => encoded.attentionMask[i] ?? 0,
      token_type_ids: (encoded, i) => encoded.typeIds[i] ?? 0,
    };
    const feeds: Record<string, Tensor> = {};
    for (const [name, type] of Object.entries(this.inputTypes)) {
      const value = columns[name] as (encoded: Encoded, i: number) => number;
      const padValue = name === "input_ids" ? pad : 0;
      if (type === "int64") {
        const array = new BigInt64Array(batch.length * length).fill(BigInt(padValue));
        batch.forEach((encoded, row) => {
          for (let i = 0; i < encoded.ids.length; i++) array[row * length + i] = BigInt(value(encoded, i));
        });
        feeds[name] = new Tensor("int64", array, [batch.length, length]);
      } else {
        const array = new Int32Array(batch.length * length).fill(padValue);
        batch.forEach((encoded, row) => {
          for (let i = 0; i < encoded.ids.length; i++) array[row * length + i] = value(encoded, i);
        });
        feeds[name] = new Tensor("int32", array, [batch.length, length]);
      }
    }
    const result = (await this.session.run(feeds, [this.info.output]))[this.info.output] as Tensor;
    return { data: result.data as Float32Array, dims: result.dims };
  }
}
