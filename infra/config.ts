import { z } from "zod";
import { EMBEDDING_MODEL_IDS } from "../shared/ml/model-registry.ts";

/**
 * Deployment configuration of the CDK app, read from CDK context (`-c key=value` on the command
 * line, or the "context" block of cdk.json) and validated here once, so a typo fails synth with a
 * readable message instead of deploying something odd.
 *
 * Values given with `-c` always arrive as strings; values from cdk.json keep their JSON type.
 * Both forms are accepted below (e.g. `-c natGateways=1`, `-c allowedContentTypes=a/b,c/d`).
 */

const MiB = 1024 * 1024;

/** An integer, from a JSON number or a `-c` string. */
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A boolean, from JSON true/false or the strings "true"/"false" (z.coerce.boolean would read "false" as true). */
const bool = z.union([z.boolean(), z.enum(["true", "false"]).transform((value) => value === "true")]);

/** A list, from a JSON array or a comma-separated string. */
const list = z
  .union([z.array(z.string()), z.string()])
  .transform((value) =>
    (Array.isArray(value) ? value : value.split(",")).map((item) => item.trim()).filter((item) => item.length > 0),
  )
  .pipe(z.array(z.string()).min(1));

/** Lambda memory: 128 MB to 10,240 MB (vCPU share grows with it: 1,769 MB = 1 vCPU, 10,240 MB = 6 vCPU). */
const memory = int(128, 10_240);

/** Kafka partitions: the unit of parallelism of each pipeline stage. */
const partitions = int(1, 120);

/** ESM batch size (records per invocation; Lambda also caps a batch at 6 MB of payload). */
const batchSize = int(1, 10_000);

/** Local default of the JWT issuer: the stand-in issuer of the local runtime (localstack/platform/tokens.ts). */
export const LOCAL_JWT_ISSUER = "https://datadistiller.local/issuer";

export const configSchema = z
  .object({
    /** Stage name: part of the stack name and of every resource name; lower case so it fits bucket names. */
    stage: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{0,15}$/,
        "lower-case letters, digits and '-', starting with a letter, at most 16 characters",
      )
      .default("dev"),

    // ---- Streaming -----------------------------------------------------------------------------
    /** MSK Serverless (pay per cluster-hour and partition-hour, no brokers to size) or provisioned brokers. */
    mskMode: z.enum(["serverless", "provisioned"]).default("serverless"),
    /** Provisioned mode only: broker instance type. */
    mskBrokerInstanceType: z.string().min(1).default("kafka.m7g.large"),
    /** Provisioned mode only: brokers per availability zone (total = this × azCount). */
    mskBrokersPerAz: int(1, 10).default(1),
    /** Provisioned mode only: EBS storage per broker, GiB. */
    mskBrokerVolumeGiB: int(1, 16_384).default(100),
    /** Provisioned mode only: Apache Kafka version ("3.8.x" is MSK's recommended version). */
    mskKafkaVersion: z.string().min(1).default("3.8.x"),
    partitionsDocumentsUploaded: partitions.default(6),
    partitionsChunksToEmbed: partitions.default(12),
    partitionsChunksEmbedded: partitions.default(6),

    // ---- Network ---------------------------------------------------------------------------------
    /** Availability zones of the VPC (MSK needs at least two). */
    azCount: int(2, 3).default(2),
    /** NAT gateways: 0 keeps the VPC fully private (S3/DynamoDB gateway endpoints + interface endpoints). */
    natGateways: int(0, 3).default(0),
    /**
     * Interface endpoints for Lambda and STS in the VPC. The MSK event source mapping's pollers run
     * in the cluster's subnets and need to reach both services: through these endpoints or a NAT.
     */
    vpcInterfaceEndpoints: bool.default(true),

    // ---- Functions -------------------------------------------------------------------------------
    splitMemoryMb: memory.default(2048),
    embedMemoryMb: memory.default(4096),
    indexMemoryMb: memory.default(2048),
    searchMemoryMb: memory.default(3008),
    /**
     * Reserve concurrency for the Kafka consumers (split/embed/index = their topic's partitions).
     * Turn off in accounts whose concurrency quota is too small to reserve anything (new accounts).
     */
    reserveConcurrency: bool.default(true),
    /** Where the ONNX models come from: "layer" (/opt/models) or an S3 prefix "s3://bucket/prefix". */
    modelLocation: z
      .string()
      .regex(/^(layer|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)$/, 'either "layer" or "s3://bucket/prefix"')
      .default("layer"),
    /** The embedding model of new collections (a registry id: shared/ml/model-registry.ts). */
    embeddingModel: z.enum(EMBEDDING_MODEL_IDS as [string, ...string[]]).default("all-minilm-l6-v2-q"),
    /**
     * The embedding models the functions may run (collections migrate between them); each one's files
     * must be in the layer or the S3 prefix (`npm run models` fetches these). Includes embeddingModel.
     */
    embeddingModels: list
      .pipe(z.array(z.enum(EMBEDDING_MODEL_IDS as [string, ...string[]])))
      .default(["all-minilm-l6-v2-q"]),
    /**
     * Where the search function's cross-encoder comes from: "models" (`<models>/reranker`, from
     * modelLocation) or its own S3 prefix "s3://bucket/prefix", copied to /tmp on a cold start.
     */
    rerankerLocation: z
      .string()
      .regex(/^(models|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)$/, 'either "models" or "s3://bucket/prefix"')
      .default("models"),
    /** Chunks per message on chunks.to-embed (one embed work item). */
    chunksPerGroup: int(1, 512).default(16),
    /** Segments compaction merges at once (and the size ratio between tiers of segment sizes). */
    mergeFactor: int(2, 16).default(4),
    /** No compaction produces a segment with more chunks (bounds a merge's memory and time). */
    maxSegmentChunks: int(4096, 4_194_304).default(262_144),
    /** Segments with at least this many chunks get an approximate (IVF-PQ) dense index, re-scored exactly. */
    annMinChunks: int(1024, 4_194_304).default(4096),
    compactMemoryMb: memory.default(2048),
    /** Search-shard functions (0: every collection is searched in the search function alone). */
    searchShardFunctions: int(0, 64).default(10),
    /** Collections with more chunks are searched as parallel shards of at most this many. */
    shardMaxChunks: int(4096, 100_000_000).default(1_000_000),
    /** /tmp of the search functions, where segments are cached whole across warm invocations. */
    searchCacheMiB: int(512, 10_240).default(10_240),
    logRetentionDays: z.coerce
      .number()
      .int()
      .refine(
        (days) => RETENTION_DAYS.includes(days),
        "a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 180, 365, … days",
      )
      .default(30),

    // ---- Event source mappings --------------------------------------------------------------------
    splitBatchSize: batchSize.default(5),
    embedBatchSize: batchSize.default(8),
    indexBatchSize: batchSize.default(50),
    /** Retries of a failed batch before it goes to the dead-letter bucket (bounded: never -1). */
    esmRetryAttempts: int(0, 10_000).default(3),
    /** Provisioned-mode event pollers kept warm per mapping (provisioned mode carries the error-handling controls). */
    esmMinimumPollers: int(1, 200).default(1),

    // ---- Uploads and storage -------------------------------------------------------------------------
    allowedContentTypes: list.default(["application/pdf", "text/plain", "text/markdown", "text/html"]),
    maxUploadBytes: int(1, 5 * 1024 * MiB).default(50 * MiB),
    uploadUrlTtlSeconds: int(60, 3600).default(900),
    /** POST: a presigned POST policy S3 enforces (type and size); PUT: a presigned URL (signed type and length). */
    uploadMethod: z.enum(["POST", "PUT"]).default("PUT"),
    /** Raw uploads are deleted this many days after upload (the index keeps the extracted chunks). */
    uploadRetentionDays: int(1, 3650).default(30),
    deadLetterRetentionDays: int(1, 3650).default(30),
    /** Finished jobs expire (DynamoDB TTL on expiresAt) this many days after they end. */
    jobRetentionDays: int(1, 3650).default(30),
    stallAfterMinutes: int(1, 1440).default(10),
    /** Browser origins allowed to PUT/POST to the upload bucket with a presigned URL/POST. */
    corsAllowedOrigins: list.default(["*"]),
    /** "retain" keeps buckets and the table when the stack is deleted; "destroy" empties and deletes them. */
    removalPolicy: z.enum(["retain", "destroy"]).default("retain"),

    // ---- API --------------------------------------------------------------------------------------
    jwtIssuer: z.url().default(LOCAL_JWT_ISSUER),
    jwtAudience: list.default(["datadistiller"]),
    tenantClaim: z
      .string()
      .regex(/^[A-Za-z0-9_:.\-/]+$/)
      .default("tenant"),
    apiThrottleRateLimit: int(1, 100_000).default(50),
    apiThrottleBurstLimit: int(1, 100_000).default(100),

    // ---- Operations -----------------------------------------------------------------------------------
    /** E-mail address subscribed to the alarm topic (confirmation mail sent at deploy). */
    alarmEmail: z.email().optional(),
  })
  .superRefine((config, ctx) => {
    if (config.apiThrottleBurstLimit < config.apiThrottleRateLimit) {
      ctx.addIssue({ code: "custom", path: ["apiThrottleBurstLimit"], message: "must be ≥ apiThrottleRateLimit" });
    }
    if (config.natGateways === 0 && !config.vpcInterfaceEndpoints) {
      ctx.addIssue({
        code: "custom",
        path: ["vpcInterfaceEndpoints"],
        message:
          "with natGateways=0 the Kafka event source pollers reach Lambda and STS only through interface endpoints",
      });
    }
    if (config.natGateways > config.azCount) {
      ctx.addIssue({ code: "custom", path: ["natGateways"], message: "at most one NAT gateway per availability zone" });
    }
  });

const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export type DataDistillerConfig = z.output<typeof configSchema>;
export type ConfigKey = keyof DataDistillerConfig;
export const CONFIG_KEYS = Object.keys(configSchema.shape) as ConfigKey[];

export class InvalidConfigError extends Error {
  override name = "InvalidConfigError";
}

/**
 * Validates raw values (as CDK context gives them). `lookup` returns the value of one key, or
 * undefined for the default. Every problem is reported at once.
 */
export function parseConfig(lookup: (key: string) => unknown): DataDistillerConfig {
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = lookup(key);
    if (value !== undefined && value !== null && value !== "") raw[key] = value;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  - ${issue.path.join(".") || "(config)"}: ${issue.message}`);
    throw new InvalidConfigError(`invalid DataDistiller configuration (CDK context):\n${problems.join("\n")}`);
  }
  return parsed.data;
}

/** Reads the configuration from a construct's CDK context (App, Stack, …). */
export function configFromContext(node: { tryGetContext(key: string): unknown }): DataDistillerConfig {
  return parseConfig((key) => node.tryGetContext(key));
}
