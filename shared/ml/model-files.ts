import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * Where the model files live. The model directory is configuration (env MODEL_DIR): locally
 * `npm run models` fills `<cache>/models`; in AWS it is the layer (/opt/models) or a directory
 * synced from S3; a user may also point it at files downloaded from HuggingFace, laid out as
 * `<MODEL_DIR>/<model name>/model.onnx` + `tokenizer.json`.
 */

/** Sentence embedder: all-MiniLM-L6-v2, int8-quantized (mean pooling, 384 dimensions). */
export const EMBEDDER_NAME = "all-minilm-l6-v2-q";
/**
 * The cross-encoder's directory under the models root. No registry this project can reach ships one: users
 * install theirs (`npm run models -- --reranker DIR`, see shared/ml/reranker-files.ts for the layout).
 */
export const RERANKER_DIR = "reranker";

export interface ModelFiles {
  onnx: string;
  tokenizer: string;
}

export interface ModelPaths {
  embedder: ModelFiles;
  /** The cross-encoder's directory (it may not exist: reranking is optional). */
  reranker: string;
}

export function modelFiles(modelDir: string, name: string): ModelFiles {
  const dir = join(modelDir, name);
  return { onnx: join(dir, "model.onnx"), tokenizer: join(dir, "tokenizer.json") };
}

/** The configured model directory; throws a clear error when MODEL_DIR is unset or missing. */
export function modelDir(): string {
  const dir = process.env.MODEL_DIR;
  if (!dir) {
    throw new Error(
      "MODEL_DIR is not set: point it at the model directory (run `npm run models`, it prints the path).",
    );
  }
  if (!existsSync(dir)) {
    throw new Error(`MODEL_DIR=${dir} does not exist: run \`npm run models\` to fetch the models.`);
  }
  return resolve(dir);
}

/** Paths of the embedder and reranker files under `dir` (default: MODEL_DIR). */
export function modelPaths(dir: string = modelDir()): ModelPaths {
  return { embedder: modelFiles(dir, EMBEDDER_NAME), reranker: join(dir, RERANKER_DIR) };
}

/** Throws a clear error naming the missing file when a model is not in place. */
export function requireModelFiles(files: ModelFiles, role: string): ModelFiles {
  for (const file of [files.onnx, files.tokenizer]) {
    if (!existsSync(file)) {
      throw new Error(
        `${role} model file missing: ${file}. Run \`npm run models\` and set MODEL_DIR to the directory it prints.`,
      );
    }
  }
  return files;
}

/** True when both files of a model are present. */
export function hasModelFiles(files: ModelFiles): boolean {
  return existsSync(files.onnx) && existsSync(files.tokenizer);
}
