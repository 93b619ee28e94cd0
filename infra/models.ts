import type * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as s3 from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import { grantStatement } from "./lambda-defaults.ts";

/** What the stages that run a model (split's tokenizer, embed, search) need. */
export interface ModelProps {
  /** The native layer: onnxruntime-node, faiss-node, pdf-parse and, by default, the models. */
  readonly nativeLayer: lambda.ILayerVersion;
  /**
   * Where the ONNX models come from: "layer" (/opt/models) or an S3 prefix "s3://bucket/prefix".
   * @default "layer"
   */
  readonly modelLocation?: string;
  /**
   * The embedding model of new collections (a registry id, shared/ml/model-registry.ts).
   * @default "all-minilm-l6-v2-q"
   */
  readonly embeddingModel?: string;
  /**
   * The embedding models the functions may run (their files must be in the layer or the S3 prefix).
   * @default [embeddingModel]
   */
  readonly embeddingModels?: readonly string[];
}

/** EMBEDDING_MODEL and EMBEDDING_MODELS of the functions that run the embedder. */
export function embeddingEnvironment(props: Pick<ModelProps, "embeddingModel" | "embeddingModels">) {
  const model = props.embeddingModel ?? "all-minilm-l6-v2-q";
  const models = [...new Set([model, ...(props.embeddingModels ?? [])])];
  return { EMBEDDING_MODEL: model, EMBEDDING_MODELS: models.join(",") };
}

/** MODEL_DIR (and MODEL_S3_URI when the models come from S3). */
export function modelEnvironment(location = "layer"): { MODEL_DIR: string; MODEL_S3_URI?: string } {
  return location.startsWith("s3://")
    ? { MODEL_DIR: "/tmp/models", MODEL_S3_URI: location }
    : { MODEL_DIR: "/opt/models" };
}

/** Read access to the model prefix when the models come from S3 (nothing to grant for the layer). */
export function grantReadModels(scope: Construct, grantee: iam.IGrantable, location = "layer"): iam.Grant | undefined {
  if (!location.startsWith("s3://")) return undefined;
  const { bucket, prefix } = parseS3Uri(location);
  const modelBucket = s3.Bucket.fromBucketName(scope, "ModelBucket", bucket);
  return grantStatement({
    grantee,
    sid: "ReadModels",
    actions: ["s3:GetObject"],
    resourceArns: [modelBucket.arnForObjects(`${prefix}*`)],
  });
}

/**
 * s3:ListBucket on the prefix only, for a function that copies a whole prefix (the search function
 * copies every model under it, cross-encoder included).
 */
export function grantListPrefix(scope: Construct, grantee: iam.IGrantable, sid: string, location: string): iam.Grant {
  const { bucket, prefix } = parseS3Uri(location);
  return grantStatement({
    grantee,
    sid,
    actions: ["s3:ListBucket"],
    resourceArns: [s3.Bucket.fromBucketName(scope, `${sid}Bucket`, bucket).bucketArn],
    conditions: { StringLike: { "s3:prefix": [`${prefix}*`] } },
  });
}

/**
 * What a function that copies the models to /tmp during init needs when they come from S3: read
 * and list the prefix (nothing to grant for the layer).
 */
export function grantCopyModels(scope: Construct, grantee: iam.IGrantable, location = "layer"): iam.Grant[] {
  const read = grantReadModels(scope, grantee, location);
  return read ? [read, grantListPrefix(scope, grantee, "ListModels", location)] : [];
}

/** The search function's cross-encoder from its own S3 prefix: read and list that prefix only. */
export function grantReadReranker(scope: Construct, grantee: iam.IGrantable, location: string): iam.Grant[] {
  const { bucket, prefix } = parseS3Uri(location);
  const rerankerBucket = s3.Bucket.fromBucketName(scope, "RerankerBucket", bucket);
  return [
    grantStatement({
      grantee,
      sid: "ReadReranker",
      actions: ["s3:GetObject"],
      resourceArns: [rerankerBucket.arnForObjects(`${prefix}*`)],
    }),
    grantListPrefix(scope, grantee, "ListReranker", location),
  ];
}

function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match?.[1]) throw new Error(`not an S3 URI: ${uri}`);
  const prefix = match[2] ?? "";
  return { bucket: match[1], prefix: prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/` };
}
