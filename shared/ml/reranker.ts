import type { InferenceSession, Tensor } from "onnxruntime-node";
import {
  batchTensors,
  createSession,
  DEFAULT_BATCH_SIZE,
  inLengthOrderedBatches,
  type SessionSettings,
} from "./embedder.ts";
import { type ModelFiles, requireModelFiles } from "./model-files.ts";
import { type Encoded, RERANKER_MAX_TOKENS, TextTokenizer } from "./tokenizer.ts";

/**
 * Cross-encoder: reads `[CLS] query [SEP] passage [SEP]` and returns a relevance score, the
 * first logit (higher is more relevant; not a probability, so only compare scores of one query).
 */
export class Reranker {
  private constructor(
    private readonly session: InferenceSession,
    readonly tokenizer: TextTokenizer,
    private readonly batchSize: number,
  ) {}

  static async load(files: ModelFiles, settings: SessionSettings = {}): Promise<Reranker> {
    requireModelFiles(files, "reranker");
    const session = await createSession(files.onnx, settings.threads);
    const tokenizer = TextTokenizer.fromFile(files.tokenizer, RERANKER_MAX_TOKENS);
    const fromEnv = Number.parseInt(process.env.RERANK_BATCH_SIZE ?? "", 10);
    // One pair per call by default: with a dynamically quantized model, scores from different
    // batches would not be comparable (see DEFAULT_BATCH_SIZE).
    const batchSize = settings.batchSize ?? (fromEnv > 0 ? fromEnv : DEFAULT_BATCH_SIZE);
    return new Reranker(session, tokenizer, batchSize);
  }

  /** One score per passage, in input order. Pairs are truncated to 512 tokens. */
  async score(query: string, passages: string[]): Promise<number[]> {
    const encoded = passages.map((passage) => this.tokenizer.encodePair(query, passage));
    return inLengthOrderedBatches(
      encoded,
      (e) => e.ids.length,
      this.batchSize,
      (batch) => this.scoreBatch(batch),
    );
  }

  private async scoreBatch(batch: Encoded[]): Promise<number[]> {
    const feeds = batchTensors(this.session, batch, this.tokenizer.padId);
    const outputName = this.session.outputNames[0] as string;
    const logits = (await this.session.run(feeds))[outputName] as Tensor;
    const data = logits.data as Float32Array;
    // Logits are [batch, labels] (one label for the ms-marco models): take each row's first.
    const stride = data.length / batch.length;
    return batch.map((_, row) => data[row * stride] as number);
  }
}
