import { z } from "zod";

/** Configuration comes from the environment (the template sets it in AWS and locally). */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const name = z.string().min(1);
const csv = z
  .string()
  .min(1)
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  );

/** The variables functions read, with their types; each function loads the ones it uses. */
export const settings = {
  STAGE: z.string().default("local"),
  AWS_REGION: z.string().default("us-east-1"),
  JOBS_TABLE: name,
  UPLOAD_BUCKET: name,
  INDEX_BUCKET: name,
  DEAD_LETTER_BUCKET: name,
  /** The redrive function's name (the dead-letter API invokes it to replay). */
  REDRIVE_FUNCTION: name,
  /** The migration fan-out function's name (the collections API invokes it to publish re-embed requests). */
  MIGRATION_FANOUT_FUNCTION: name,
  TOPIC_DOCUMENTS_UPLOADED: z.string().default("documents.uploaded"),
  TOPIC_CHUNKS_TO_EMBED: z.string().default("chunks.to-embed"),
  TOPIC_CHUNKS_EMBEDDED: z.string().default("chunks.embedded"),
  KAFKA_BROKERS: csv,
  /** "aws-iam" for MSK with IAM authentication; unset for plaintext (local Kafka). */
  KAFKA_SASL_MECHANISM: z.enum(["aws-iam", "none"]).default("none"),
  ALLOWED_CONTENT_TYPES: csv.default(["application/pdf", "text/plain", "text/markdown", "text/html"]),
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(50 * 1024 * 1024),
  /**
   * PUT: a presigned URL that signs the content type and the exact length, so S3 refuses any
   * other file. POST: a browser form policy (content-length-range, content type); the local S3
   * server's notifications for POST uploads carry no object key, so PUT is the default.
   */
  UPLOAD_METHOD: z.enum(["POST", "PUT"]).default("PUT"),
  UPLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(60).max(3600).default(900),
  TENANT_CLAIM: z.string().default("tenant"),
  /** The bearer tokens' issuer and accepted audiences (the API's functions verify tokens themselves). */
  JWT_ISSUER: z.url(),
  JWT_AUDIENCE: csv,
  /** A JWK set (JSON) to verify tokens with instead of the issuer's discovered keys: the local issuer's. */
  JWT_JWKS: z.string().min(1).optional(),
  MODEL_DIR: name,
  /** Set when the models come from S3 (modelLocation=s3://…) instead of the layer; MODEL_DIR is then /tmp/models. */
  MODEL_S3_URI: z
    .string()
    .regex(/^s3:\/\//)
    .optional(),
  /** The embedding model of new collections (a registry id, shared/ml/model-registry.ts). */
  EMBEDDING_MODEL: z.string().min(1).default("all-minilm-l6-v2-q"),
  /** The embedding models this deployment has files for and may run (comma-separated registry ids). */
  EMBEDDING_MODELS: csv.default(["all-minilm-l6-v2-q"]),
  /** rerankerLocation=s3://…: the cross-encoder's own prefix, copied to /tmp on a cold start. */
  RERANKER_S3_URI: z.string().startsWith("s3://").optional(),
  /** Server defaults for a search that leaves them out (shared/domain/rerank.ts). */
  RERANK_METHOD: z.enum(["interpolate", "rank"]).optional(),
  RERANK_WEIGHT: z.coerce.number().min(0).max(1).optional(),
  RERANK_DEADLINE_MS: z.coerce.number().int().min(1).max(10_000).optional(),
  /** Chunks per message on chunks.to-embed: the unit of parallel embedding work. */
  CHUNKS_PER_GROUP: z.coerce.number().int().min(1).max(512).default(16),
  /** Segments compaction merges at once (and the size ratio between tiers). */
  MERGE_FACTOR: z.coerce.number().int().min(2).max(16).default(4),
  /** No merge produces a segment with more chunks than this. */
  MAX_SEGMENT_CHUNKS: z.coerce.number().int().min(1024).default(262_144),
  /** Segments with at least this many chunks get an approximate (IVF-PQ) dense index. */
  ANN_MIN_CHUNKS: z.coerce.number().int().min(1024).default(4096),
  /** The compaction function the index stage hands collections to (asynchronously). */
  COMPACT_FUNCTION: z.string().min(1).optional(),
  /** Search-shard functions (names or ARNs); shard i of a collection goes to function i mod their count. */
  SEARCH_SHARD_FUNCTIONS: csv.optional(),
  /** Collections with more chunks are searched as shards of at most this many, in parallel. */
  SHARD_MAX_CHUNKS: z.coerce.number().int().min(1).default(1_000_000),
  /** Where search functions keep whole segments across warm invocations. */
  SEGMENT_CACHE_DIR: z.string().min(1).default("/tmp/segments"),
  /** Inverted lists scanned per ANN segment, and the shortlist re-scored exactly (× retrieval depth). */
  ANN_NPROBE: z.coerce.number().int().min(1).optional(),
  ANN_RESCORE: z.coerce.number().min(1).optional(),
  /** Days a finished job stays readable before its TTL removes it. */
  JOB_RETENTION_DAYS: z.coerce.number().int().min(1).default(30),
  /** Minutes without progress after which a running job is reported stalled. */
  STALL_AFTER_MINUTES: z.coerce.number().min(1).default(10),
  S3_ENDPOINT: z.string().url().optional(),
  DYNAMODB_ENDPOINT: z.string().url().optional(),
} as const;

type Settings = typeof settings;
export type SettingName = keyof Settings;
export type Config<K extends SettingName> = { [P in K]: z.output<Settings[P]> };

/**
 * The environment contract: for each function, the variables its CDK construct sets
 * (infra/stages/*.ts, through `FunctionEnvironment`) and its handler reads
 * (functions/<name>/handler.ts, through `loadFunctionConfig`). A variable added here fails the
 * type check of the construct until it sets it. Lambda itself provides AWS_REGION.
 */
/**
 * What a function that verifies bearer tokens reads (shared/adapters/bearer-auth.ts): the API's
 * functions check the JWT themselves instead of an API Gateway authorizer (infra/api.ts says why).
 */
export const BEARER_AUTH_SETTINGS = ["TENANT_CLAIM", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS"] as const;
export type BearerAuthSetting = (typeof BEARER_AUTH_SETTINGS)[number];

export const FUNCTION_ENVIRONMENT = {
  // GET /openapi.json and the $default route's 404/405 problems (built with the HTTP API): reads nothing.
  "api-meta": [],
  "upload-url": [
    "JOBS_TABLE",
    "UPLOAD_BUCKET",
    "ALLOWED_CONTENT_TYPES",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_METHOD",
    "UPLOAD_URL_TTL_SECONDS",
    ...BEARER_AUTH_SETTINGS,
    "JOB_RETENTION_DAYS",
  ],
  "on-upload": [
    "JOBS_TABLE",
    "MAX_UPLOAD_BYTES",
    "KAFKA_BROKERS",
    "KAFKA_SASL_MECHANISM",
    "TOPIC_DOCUMENTS_UPLOADED",
    "JOB_RETENTION_DAYS",
  ],
  split: [
    "JOBS_TABLE",
    "KAFKA_BROKERS",
    "KAFKA_SASL_MECHANISM",
    "TOPIC_CHUNKS_TO_EMBED",
    "CHUNKS_PER_GROUP",
    "EMBEDDING_MODEL",
    "MODEL_DIR",
    "MODEL_S3_URI",
    "JOB_RETENTION_DAYS",
  ],
  embed: [
    "JOBS_TABLE",
    "KAFKA_BROKERS",
    "KAFKA_SASL_MECHANISM",
    "TOPIC_CHUNKS_EMBEDDED",
    "EMBEDDING_MODEL",
    "EMBEDDING_MODELS",
    "MODEL_DIR",
    "MODEL_S3_URI",
    "JOB_RETENTION_DAYS",
  ],
  // COMPACT_FUNCTION: the index function hands collections with something to merge to compaction.
  // TOPIC_CHUNKS_TO_EMBED: copies of uploads for a collection's second index, migrations' re-embedding.
  index: [
    "JOBS_TABLE",
    "INDEX_BUCKET",
    "JOB_RETENTION_DAYS",
    "COMPACT_FUNCTION",
    "MERGE_FACTOR",
    "MAX_SEGMENT_CHUNKS",
    "KAFKA_BROKERS",
    "KAFKA_SASL_MECHANISM",
    "TOPIC_CHUNKS_TO_EMBED",
    "CHUNKS_PER_GROUP",
  ],
  // Size-tiered merges of one collection, invoked asynchronously by the index function (and by itself).
  compact: ["JOBS_TABLE", "INDEX_BUCKET", "MERGE_FACTOR", "MAX_SEGMENT_CHUNKS", "ANN_MIN_CHUNKS"],
  search: [
    "JOBS_TABLE",
    "INDEX_BUCKET",
    ...BEARER_AUTH_SETTINGS,
    "EMBEDDING_MODEL",
    "EMBEDDING_MODELS",
    "MODEL_DIR",
    "MODEL_S3_URI",
    "RERANKER_S3_URI",
    "RERANK_METHOD",
    "RERANK_WEIGHT",
    "RERANK_DEADLINE_MS",
    "SEGMENT_CACHE_DIR",
    "SEARCH_SHARD_FUNCTIONS",
    "SHARD_MAX_CHUNKS",
    "ANN_NPROBE",
    "ANN_RESCORE",
  ],
  // GET /collections/{name} and migrations: outside the VPC (it reaches the issuer's keys), it invokes
  // migration-fanout (in the VPC, it reaches Kafka) to send a migration's re-embed requests.
  collections: [
    "JOBS_TABLE",
    "INDEX_BUCKET",
    ...BEARER_AUTH_SETTINGS,
    "MIGRATION_FANOUT_FUNCTION",
    "EMBEDDING_MODEL",
    "EMBEDDING_MODELS",
    "MODEL_DIR",
    "MODEL_S3_URI",
    "JOB_RETENTION_DAYS",
  ],
  "migration-fanout": ["KAFKA_BROKERS", "KAFKA_SASL_MECHANISM", "TOPIC_CHUNKS_EMBEDDED"],
  // One shard of a large collection, invoked by the search function (infra/stages/search-shards.ts: several
  // identical functions, each with this contract).
  "search-shard": ["INDEX_BUCKET", "SEGMENT_CACHE_DIR"],
  "job-status": ["JOBS_TABLE", ...BEARER_AUTH_SETTINGS, "STALL_AFTER_MINUTES"],
  "delete-document": ["JOBS_TABLE", ...BEARER_AUTH_SETTINGS],
  "dead-letter": ["JOBS_TABLE", "DEAD_LETTER_BUCKET", "JOB_RETENTION_DAYS"],
  redrive: [
    "JOBS_TABLE",
    "DEAD_LETTER_BUCKET",
    "KAFKA_BROKERS",
    "KAFKA_SASL_MECHANISM",
    "TOPIC_DOCUMENTS_UPLOADED",
    "TOPIC_CHUNKS_TO_EMBED",
    "TOPIC_CHUNKS_EMBEDDED",
    "JOB_RETENTION_DAYS",
  ],
  sweeper: [
    "JOBS_TABLE",
    "UPLOAD_BUCKET",
    "DEAD_LETTER_BUCKET",
    "MAX_UPLOAD_BYTES",
    "KAFKA_BROKERS",
    "KAFKA_SASL_MECHANISM",
    "TOPIC_DOCUMENTS_UPLOADED",
    "JOB_RETENTION_DAYS",
  ],
  // GET /dead-letters, POST /dead-letters/redrive: outside the VPC (it reaches the issuer's keys), it
  // invokes redrive (in the VPC, the one that reaches Kafka) to replay.
  "dead-letter-api": ["DEAD_LETTER_BUCKET", "REDRIVE_FUNCTION", ...BEARER_AUTH_SETTINGS],
} as const satisfies Record<string, readonly SettingName[]>;

export type FunctionName = keyof typeof FUNCTION_ENVIRONMENT;
export const FUNCTION_NAMES = Object.keys(FUNCTION_ENVIRONMENT) as FunctionName[];
/** Deployed as several identical functions (one per shard index); every other name is one function. */
export type ReplicatedFunctionName = "search-shard";
export type SingleFunctionName = Exclude<FunctionName, ReplicatedFunctionName>;
export const SINGLE_FUNCTION_NAMES = FUNCTION_NAMES.filter((fn): fn is SingleFunctionName => fn !== "search-shard");

/** Variables a construct may leave unset (their absence means something: e.g. models from the layer). */
type OptionalVariable =
  | "MODEL_S3_URI"
  | "RERANKER_S3_URI"
  | "RERANK_METHOD"
  | "RERANK_WEIGHT"
  | "RERANK_DEADLINE_MS"
  // Unset: no compaction function / every collection searched in the search function / faiss defaults.
  | "COMPACT_FUNCTION"
  | "SEARCH_SHARD_FUNCTIONS"
  | "ANN_NPROBE"
  | "ANN_RESCORE"
  // Set locally only (the local issuer's keys); a deployed function discovers its issuer's.
  | "JWT_JWKS";
type VariableOf<F extends FunctionName> = (typeof FUNCTION_ENVIRONMENT)[F][number];

/** The variables the construct of function F sets, as the strings Lambda passes: exactly those its handler reads. */
export type FunctionEnvironment<F extends FunctionName> = {
  readonly [K in Exclude<VariableOf<F>, OptionalVariable>]: string;
} & { readonly [K in Extract<VariableOf<F>, OptionalVariable>]?: string };

/** What the handler of function F reads: its contract's variables, parsed, and Lambda's AWS_REGION. */
export function loadFunctionConfig<F extends FunctionName>(
  fn: F,
  env: NodeJS.ProcessEnv = process.env,
): Config<VariableOf<F> | "AWS_REGION"> {
  return loadConfig([...(FUNCTION_ENVIRONMENT[fn] as readonly VariableOf<F>[]), "AWS_REGION"], env);
}

/**
 * Reads and validates the named settings, failing at cold start with one message that lists
 * every missing or malformed variable.
 */
export function loadConfig<K extends keyof Settings>(
  keys: readonly K[],
  env: NodeJS.ProcessEnv = process.env,
): Config<K> {
  const shape = Object.fromEntries(keys.map((key) => [key, settings[key]]));
  const parsed = z.object(shape).safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  return parsed.data as Config<K>;
}
