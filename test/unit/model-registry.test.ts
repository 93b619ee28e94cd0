import { describe, expect, it } from "vitest";
import type { CollectionState, IndexManifest } from "../../shared/domain/manifest.ts";
import {
  canonicalModelId,
  EMBEDDING_MODEL_IDS,
  EMBEDDING_MODELS,
  embeddingModel,
  isEmbeddingModel,
  parseModelList,
} from "../../shared/ml/model-registry.ts";
import { type CollectionDeps, CollectionError, startMigration } from "../../shared/stages/collections.ts";

describe("the embedding-model registry", () => {
  it("has one entry per id, each with its own Maven artifact, sums, pooling and 384 dimensions", () => {
    expect(new Set(EMBEDDING_MODEL_IDS).size).toBe(EMBEDDING_MODELS.length);
    for (const model of EMBEDDING_MODELS) {
      expect(model.artifact).toMatch(/^dev\.langchain4j:langchain4j-embeddings-[a-z0-9-]+:1\.20\.0-beta30$/);
      expect(model.sha256.onnx).toMatch(/^[0-9a-f]{64}$/);
      expect(model.sha256.tokenizer).toMatch(/^[0-9a-f]{64}$/);
      expect(["mean", "cls"]).toContain(model.pooling);
      expect(model.dimension).toBe(384);
    }
    expect(embeddingModel("bge-small-en-v1.5-q")).toMatchObject({ pooling: "cls", passagePrefix: "" });
    expect(embeddingModel("e5-small-v2-q")).toMatchObject({ queryPrefix: "query: ", passagePrefix: "passage: " });
  });

  it("takes a model's own name for the one precision offered, never for an id of its own", () => {
    expect(embeddingModel("bge-small-en-v1.5").id).toBe("bge-small-en-v1.5-q");
    expect(embeddingModel("e5-small-v2").id).toBe("e5-small-v2-q");
    // all-minilm-l6-v2 is the fp32 model's own id, not the int8 one's alias.
    expect(embeddingModel("all-minilm-l6-v2").id).toBe("all-minilm-l6-v2");
    expect(canonicalModelId("bge-small-en-v1.5")).toBe("bge-small-en-v1.5-q");
    expect(canonicalModelId("no-such-model")).toBe("no-such-model");
    const aliases = EMBEDDING_MODELS.flatMap((model) => model.aliases ?? []);
    for (const alias of aliases) expect(EMBEDDING_MODEL_IDS).not.toContain(alias);
  });

  it("parses a configured list into registry ids, once each, refusing unknown names", () => {
    expect(parseModelList(" bge-small-en-v1.5 , bge-small-en-v1.5-q,all-minilm-l6-v2-q,")).toEqual([
      "bge-small-en-v1.5-q",
      "all-minilm-l6-v2-q",
    ]);
    expect(() => parseModelList("all-minilm-l6-v2-q,gte-small")).toThrow(/unknown embedding model "gte-small"/);
    expect(isEmbeddingModel("gte-small")).toBe(false);
  });
});

describe("starting a migration", () => {
  const active: IndexManifest = {
    tenant: "t",
    collection: "c",
    index: "1",
    model: "bge-small-en-v1.5-q",
    version: 1,
    segments: [],
    tombstones: [],
  };
  const deps = (enabledModels: string[]) =>
    ({
      manifests: {
        collection: async (): Promise<CollectionState & { dropped: string[] }> => ({
          tenant: "t",
          collection: "c",
          active: "1",
          indexes: new Map([["1", active]]),
          dropped: [],
        }),
      },
      enabledModels,
    }) as unknown as CollectionDeps;
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => (error instanceof CollectionError ? error.code : error),
    );

  it("refuses a model the deployment does not run, naming the ones it does", async () => {
    await expect(startMigration("t", "c", { model: "e5-small-v2-q" }, deps(["all-minilm-l6-v2-q"]))).rejects.toThrow(
      /e5-small-v2-q is not one this deployment runs: all-minilm-l6-v2-q/,
    );
  });

  it("reads a model's own name as its registry id (here: the model the collection already uses)", async () => {
    expect(await refusal(startMigration("t", "c", { model: "bge-small-en-v1.5" }, deps(["bge-small-en-v1.5-q"])))).toBe(
      "SAME_MODEL",
    );
  });
});
