import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { cacheDir } from "../localstack/servers/paths.ts";
import type { EmbeddingModelSpec } from "../shared/ml/model-registry.ts";

/**
 * Embeddings of the evaluation corpus, kept between runs: embedding SciFact's 12k chunks takes
 * minutes on two cores, while splitting, indexing and searching (what a change usually touches)
 * take seconds. One file per dataset and model (its id, file, prefix, window and pooling), keyed
 * inside by the chunk text, so a new chunker re-embeds exactly what changed and another model
 * never reads this one's vectors. Stored as [sha1 of text (20 B), dim float32s] per chunk.
 */
export class EmbeddingCache {
  private readonly vectors = new Map<string, Float32Array>();
  private added = 0;
  readonly file: string;

  constructor(dataset: string, model: EmbeddingModelSpec, modelFile: string) {
    const file = statSync(modelFile);
    const { dimension } = model;
    const tag = createHash("sha1")
      .update(
        JSON.stringify([model.id, model.sha256.onnx, model.passagePrefix, model.maxTokens, model.pooling, file.size]),
      )
      .digest("hex")
      .slice(0, 12);
    this.file = join(cacheDir, "eval", `${basename(resolve(dataset))}-${model.id}-${tag}.vectors`);
    if (!existsSync(this.file)) return;
    const bytes = readFileSync(this.file);
    const record = 20 + dimension * 4;
    for (let offset = 0; offset + record <= bytes.length; offset += record) {
      const key = bytes.subarray(offset, offset + 20).toString("hex");
      const floats = new Float32Array(dimension);
      new Uint8Array(floats.buffer).set(bytes.subarray(offset + 20, offset + record));
      this.vectors.set(key, floats);
    }
  }

  get size(): number {
    return this.vectors.size;
  }

  /** Cached vectors for the texts; texts not cached yet are embedded with `embed` and remembered. */
  async embed(texts: string[], embed: (texts: string[]) => Promise<Float32Array[]>): Promise<Float32Array[]> {
    const keys = texts.map((text) => createHash("sha1").update(text).digest("hex"));
    const missing = new Map<string, string>();
    keys.forEach((key, i) => {
      if (!this.vectors.has(key)) missing.set(key, texts[i] as string);
    });
    if (missing.size > 0) {
      const fresh = await embed([...missing.values()]);
      let next = 0;
      for (const key of missing.keys()) this.vectors.set(key, fresh[next++] as Float32Array);
      this.added += missing.size;
    }
    return keys.map((key) => this.vectors.get(key) as Float32Array);
  }

  save(): void {
    if (this.added === 0) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const parts: Buffer[] = [];
    for (const [key, vector] of this.vectors) {
      parts.push(Buffer.from(key, "hex"), Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength));
    }
    writeFileSync(this.file, Buffer.concat(parts));
    this.added = 0;
  }
}
