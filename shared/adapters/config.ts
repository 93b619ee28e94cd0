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
  MODEL_DIR: name,
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
  SHARD_MAX_CHUNKS: z.coerce.number().int().min(1024).default(1_000_000),
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
export type Config<K extends keyof Settings> = { [P in K]: z.output<Settings[P]> };

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
