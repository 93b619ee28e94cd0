import { existsSync, readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";

/**
 * A cross-encoder directory as users download it, in either of the two common layouts:
 *
 *   optimum export (or sentence-transformers' onnx/ folder flattened)   Transformers.js export (Xenova/…)
 *     model.onnx                                                          onnx/model.onnx            (fp32)
 *     tokenizer.json                                                      onnx/model_quantized.onnx  (int8)
 *     config.json               (optional)                                tokenizer.json
 *     tokenizer_config.json     (optional)                                config.json, tokenizer_config.json
 *
 * tokenizer.json is required (it is what @huggingface/tokenizers reads). config.json and tokenizer_config.json
 * give the maximum length and the padding id; `reranker.json` (written by `npm run models -- --reranker`)
 * names the model and the ONNX file to use; `random-weights.json` marks the generated test models.
 */
export interface RerankerFiles {
  dir: string;
  onnx: string;
  tokenizer: string;
  /** config.json, parsed, when present. */
  config?: Record<string, unknown>;
  /** tokenizer_config.json, parsed, when present. */
  tokenizerConfig?: Record<string, unknown>;
  /** A display name: reranker.json's name, else config.json's _name_or_path, else the directory's name. */
  name: string;
  /** True when the directory holds random-weights.json (a generated test model). */
  randomWeights: boolean;
}

/** What `npm run models -- --reranker` records next to the files it installs. */
export interface RerankerManifest {
  name?: string;
  /** The ONNX file to load, relative to the directory. */
  onnx?: string;
  source?: string;
}

/**
 * The ONNX files a directory may hold, in the order one is picked when nothing names one: the plain export
 * first (fp32, what optimum writes and the safest numerically), then the int8 variants.
 */
export const ONNX_CANDIDATES = [
  "model.onnx",
  "onnx/model.onnx",
  "model_quantized.onnx",
  "onnx/model_quantized.onnx",
  "onnx/model_int8.onnx",
  "onnx/model_uint8.onnx",
  "model_optimized.onnx",
] as const;

export class RerankerFilesError extends Error {
  override name = "RerankerFilesError";
}

function readJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new RerankerFilesError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}

/** True when `dir` looks like a cross-encoder directory (it has a tokenizer.json and some ONNX file). */
export function hasReranker(dir: string): boolean {
  return existsSync(join(dir, "tokenizer.json")) && ONNX_CANDIDATES.some((file) => existsSync(join(dir, file)));
}

/**
 * The files of the cross-encoder in `dir`. `onnxFile` (relative to dir) picks one ONNX file when the
 * directory holds several; otherwise reranker.json's choice, else the first of ONNX_CANDIDATES present.
 */
export function locateReranker(dir: string, onnxFile?: string): RerankerFiles {
  if (!existsSync(dir)) throw new RerankerFilesError(`cross-encoder directory ${dir} does not exist`);
  const manifest = (readJson(join(dir, "reranker.json")) ?? {}) as RerankerManifest;
  const tokenizer = join(dir, "tokenizer.json");
  if (!existsSync(tokenizer)) {
    throw new RerankerFilesError(
      `${dir} has no tokenizer.json: a cross-encoder directory needs the model's tokenizer.json next to its ONNX file`,
    );
  }
  const wanted = onnxFile ?? manifest.onnx;
  let onnx: string | undefined;
  if (wanted) {
    onnx = join(dir, wanted);
    if (!existsSync(onnx)) throw new RerankerFilesError(`${dir} has no ${wanted}`);
  } else {
    const found = ONNX_CANDIDATES.find((file) => existsSync(join(dir, file)));
    if (!found) {
      throw new RerankerFilesError(
        `${dir} has no ONNX model: expected model.onnx (optimum) or onnx/model.onnx / onnx/model_quantized.onnx (Transformers.js)`,
      );
    }
    onnx = join(dir, found);
  }
  const config = readJson(join(dir, "config.json"));
  const tokenizerConfig = readJson(join(dir, "tokenizer_config.json"));
  const pathName = typeof config?._name_or_path === "string" ? config._name_or_path : undefined;
  return {
    dir,
    onnx,
    tokenizer,
    ...(config ? { config } : {}),
    ...(tokenizerConfig ? { tokenizerConfig } : {}),
    name: manifest.name ?? (pathName ? basename(pathName) : basename(dir)),
    randomWeights: existsSync(join(dir, "random-weights.json")),
  };
}

/** The ONNX file's path relative to its directory (for messages and reranker.json). */
export const onnxRelative = (files: RerankerFiles) => relative(files.dir, files.onnx);

/** Numbers a config file may give as numbers or numeric strings. */
function positiveInt(value: unknown): number | undefined {
  const number = typeof value === "string" ? Number(value) : value;
  return typeof number === "number" && Number.isInteger(number) && number > 0 ? number : undefined;
}

/**
 * The longest (query, passage) pair the model takes, in tokens with the special tokens, from what the files
 * say: tokenizer.json's truncation, tokenizer_config.json's model_max_length (ignored when it is the
 * "unlimited" sentinel, 1e30), and config.json's max_position_embeddings (less padding_idx + 1 for
 * RoBERTa-style models, whose positions start after the padding id: XLM-R's 514 means 512). The smallest
 * wins; `fallback` when none says.
 */
export function maxTokensOf(
  files: Pick<RerankerFiles, "config" | "tokenizerConfig">,
  tokenizerJson: { truncation?: { max_length?: number } | null },
  fallback = 512,
): number {
  const limits: number[] = [];
  const truncation = positiveInt(tokenizerJson.truncation?.max_length);
  if (truncation) limits.push(truncation);
  const modelMax = positiveInt(files.tokenizerConfig?.model_max_length);
  if (modelMax && modelMax < 1_000_000) limits.push(modelMax);
  const positions = positiveInt(files.config?.max_position_embeddings);
  if (positions) {
    const type = String(files.config?.model_type ?? "");
    const offset = /roberta|camembert/.test(type) ? (positiveInt(files.config?.pad_token_id) ?? 1) + 1 : 0;
    if (positions - offset > 0) limits.push(positions - offset);
  }
  return limits.length > 0 ? Math.min(...limits) : fallback;
}
