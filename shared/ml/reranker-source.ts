import { tmpdir } from "node:os";
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { syncS3Prefix } from "../adapters/model-sync.ts";
import { RERANKER_DIR } from "./model-files.ts";
import { CrossEncoder, type CrossEncoderSettings } from "./reranker.ts";
import { hasReranker } from "./reranker-files.ts";

export interface RerankerSource {
  /** The models root (the layer's /opt/models, or where MODEL_S3_URI was copied). */
  modelDir: string;
  /** The cross-encoder's own S3 prefix (rerankerLocation=s3://…), copied to /tmp. */
  rerankerS3Uri?: string | undefined;
  s3?: S3Client;
  /** Where an S3 cross-encoder is copied (default: <tmp>/datadistiller-reranker). */
  cacheDir?: string;
}

export interface LoadedReranker {
  reranker?: CrossEncoder;
  /** Why there is none, for search responses. */
  unavailable?: string;
  /** The directory it was loaded from (or looked for). */
  dir: string;
}

/**
 * The search function's cross-encoder: from its own S3 prefix when one is configured (copied to /tmp once
 * per execution environment), else `<models root>/reranker`. No model there is a normal state (search
 * answers "not reranked: no cross-encoder installed"); a model that is there but unusable, or an S3 prefix
 * that holds none, is an error thrown at load.
 */
export async function loadReranker(
  source: RerankerSource,
  settings: CrossEncoderSettings = {},
): Promise<LoadedReranker> {
  if (source.rerankerS3Uri) {
    if (!source.s3) throw new Error("loadReranker: an S3 client is needed for RERANKER_S3_URI");
    const dir = source.cacheDir ?? join(tmpdir(), "datadistiller-reranker");
    const synced = await syncS3Prefix(source.s3, source.rerankerS3Uri, dir);
    if (synced.files === 0 || !hasReranker(dir)) {
      throw new Error(
        `RERANKER_S3_URI ${source.rerankerS3Uri} holds no cross-encoder: upload a directory with tokenizer.json and model.onnx (or onnx/model.onnx) there`,
      );
    }
    return { reranker: await CrossEncoder.load(dir, settings), dir };
  }
  const dir = join(source.modelDir, RERANKER_DIR);
  if (!hasReranker(dir)) {
    return {
      dir,
      // How to install one: the README's Models section (npm run models -- --reranker DIR).
      unavailable: "no cross-encoder on the server",
    };
  }
  return { reranker: await CrossEncoder.load(dir, settings), dir };
}
