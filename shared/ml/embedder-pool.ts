import { Embedder, type SessionSettings } from "./embedder.ts";
import { embeddingModel } from "./model-registry.ts";

/**
 * The embedders one execution environment may run: the deployment's enabled models (env
 * EMBEDDING_MODELS), each loaded on first use and kept. A model outside that list is refused with
 * a reason naming the list (its files are not in the layer).
 */
export class EmbedderPool {
  private readonly loaded = new Map<string, Promise<Embedder>>();

  constructor(
    private readonly modelDir: string,
    readonly enabled: readonly string[],
    private readonly settings: SessionSettings = {},
  ) {}

  get(modelId: string): Promise<Embedder> {
    embeddingModel(modelId);
    if (!this.enabled.includes(modelId)) {
      return Promise.reject(
        new Error(
          `embedding model ${modelId} is not enabled in this deployment (embeddingModels: ${this.enabled.join(", ")})`,
        ),
      );
    }
    let embedder = this.loaded.get(modelId);
    if (!embedder) {
      embedder = Embedder.forModel(this.modelDir, modelId, this.settings);
      // A failed load is not kept: the next call tries again.
      embedder.catch(() => this.loaded.delete(modelId));
      this.loaded.set(modelId, embedder);
    }
    return embedder;
  }

  async embedPassages(texts: string[], modelId: string): Promise<Float32Array[]> {
    return (await this.get(modelId)).embedPassages(texts);
  }

  async embedQuery(text: string, modelId: string): Promise<Float32Array> {
    return (await this.get(modelId)).embedQuery(text);
  }
}
