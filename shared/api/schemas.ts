import { z } from "zod";
import { JOB_STATES, type JobView } from "../domain/jobs.ts";
import { rerankReportSchema, rerankRequestFields } from "../domain/rerank.ts";

/**
 * The public HTTP API's contract: every request, response and error body as a zod schema. The
 * handlers validate with these, the OpenAPI document (shared/api/openapi.ts) is generated from
 * them, and the CLI's and the console's client take their types from them, so a change here
 * reaches all three (and a drift fails the typecheck).
 *
 * Requests are strict (an unknown field is a 400 naming it) and their JSON Schema says exactly
 * what is accepted. Responses are open: clients must ignore fields they do not know, so adding
 * one is not a breaking change.
 */

/** The contract's version (semver, `info.version` of the document); see README "API versions". */
export const API_VERSION = "1.2.0";

// ---- Names ----------------------------------------------------------------------------------------

/**
 * Collections, document ids, metadata keys and tenant ids share one grammar: it keeps every such
 * name an ordinary key everywhere it is used (object keys, DynamoDB keys, S3 key segments — never
 * `.`, `..` or `__proto__`, nothing to encode).
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const NAME_RULE = "1-64 characters: a letter or digit, then letters, digits, '_', '.' or '-'";
const nameOf = (what: string) => z.string().regex(NAME_PATTERN, `${what} must be ${NAME_RULE}`);

export const DEFAULT_COLLECTION = "default";
export const collectionName = nameOf("a collection name").meta({ example: "default" });
export const documentId = nameOf("a document id").meta({ example: "doc-3f2a9c0d41b7e5a8c912" });
export const jobId = z
  .uuid()
  .meta({ description: "A job id (UUID).", example: "7b0e4a52-6f1d-4f0b-9d7e-2c3a1b5e8f90" });

/** A migration's id (`migration-<collection>-<index>-<time>`). */
export const migrationId = z
  .string()
  .regex(/^migration-[A-Za-z0-9_.-]{1,120}$/, "a migration id is migration-<collection>-<index>-<time>")
  .meta({ example: "migration-library-2-mi5x0k1c" });
/** A job's id: an upload's (a UUID), or a migration's re-embedding job (the migration's id). */
export const anyJobId = z.union([jobId, migrationId]);

/** A string that is not only white space; leading and trailing white space is dropped. */
const text = (max: number, what: string) =>
  z
    .string()
    .max(max, `${what} is over ${max.toLocaleString("en")} characters`)
    .regex(/\S/, `${what} must not be empty`)
    .transform((value) => value.trim());

// ---- Metadata -------------------------------------------------------------------------------------

export const MAX_METADATA_KEYS = 32;
export const metadataValue = z.union([z.string().max(1024), z.number(), z.boolean()]);
/**
 * Per-document metadata: up to 32 keys (names as above), each a string, number or boolean. Search
 * filters on it by exact value.
 */
export const metadata = z
  .record(nameOf("a metadata key"), metadataValue)
  .refine((value) => Object.keys(value).length <= MAX_METADATA_KEYS, `at most ${MAX_METADATA_KEYS} metadata keys`)
  .meta({
    id: "Metadata",
    maxProperties: MAX_METADATA_KEYS,
    description: `Up to ${MAX_METADATA_KEYS} keys (${NAME_RULE}); values are strings (up to 1,024 characters), numbers or booleans.`,
    example: { author: "Ada Lovelace", year: 1843, reviewed: true },
  });

// ---- POST /uploads --------------------------------------------------------------------------------

export const uploadRequest = z
  .strictObject({
    filename: text(255, "filename").meta({
      description: "The file's name: shown in jobs and results, and with the collection it names the document.",
      example: "notes.md",
    }),
    contentType: z
      .string()
      .max(255)
      .transform((value) => value.split(";")[0]?.trim().toLowerCase() ?? "")
      .meta({ description: "The file's media type; parameters are ignored.", example: "text/markdown" }),
    size: z.number().int().min(1).meta({ description: "The file's exact size in bytes.", example: 2048 }),
    collection: collectionName.default(DEFAULT_COLLECTION),
    documentId: documentId.optional().meta({
      description: "Name the document yourself; by default it is derived from the tenant, collection and filename.",
    }),
    metadata: metadata.default({}),
  })
  .meta({ id: "UploadRequest" });
export type UploadRequest = z.output<typeof uploadRequest>;

const uploadUrl = z.url().meta({ description: "Where to send the file, straight to S3." });
export const presignedUpload = z
  .discriminatedUnion("method", [
    z
      .object({
        method: z.literal("PUT"),
        url: uploadUrl,
        headers: z.record(z.string(), z.string()).meta({
          description:
            "Headers the PUT must carry, exactly as given: they are signed into the URL. `Content-Type` is the " +
            "declared type; `If-None-Match: *` makes the URL one-shot (S3 answers a second PUT with 412 " +
            "Precondition Failed, and a PUT without these headers with 403). The body's length must be the " +
            "declared size (clients send Content-Length themselves). Browsers: the bucket's CORS rules allow them.",
          example: { "Content-Type": "text/markdown", "If-None-Match": "*" },
        }),
      })
      .meta({ id: "PresignedPut", description: "A presigned PUT: send the file as the body, with `headers`." }),
    z
      .object({
        method: z.literal("POST"),
        url: uploadUrl,
        fields: z.record(z.string(), z.string()).meta({
          description: "Form fields the POST must carry before the `file` field (a browser-style POST policy).",
        }),
      })
      .meta({ id: "PresignedPost", description: "A presigned POST form: the `fields`, then the file as `file`." }),
  ])
  .meta({
    id: "PresignedUpload",
    description: "Where and how to send the file: straight to S3, once, before `expiresAt`.",
  });

export const uploadResponse = z
  .object({
    jobId,
    documentId,
    upload: presignedUpload,
    expiresAt: z.iso.datetime({ offset: true }),
  })
  .meta({ id: "UploadTicket" });

// ---- Jobs -----------------------------------------------------------------------------------------

const timestamp = z.iso.datetime({ offset: true });
export const jobState = z.enum(JOB_STATES).meta({ id: "JobState" });

export const jobView = z
  .object({
    jobId: anyJobId,
    documentId,
    collection: z.string(),
    filename: z.string(),
    state: jobState,
    counts: z.object({
      chunksTotal: z.number().int().min(0),
      chunksEmbedded: z.number().int().min(0),
      chunksIndexed: z.number().int().min(0),
    }),
    percentages: z.object({ embedded: z.number().min(0).max(100), indexed: z.number().min(0).max(100) }),
    stages: z.partialRecord(jobState, timestamp).meta({ description: "When the job entered each state." }),
    stalled: z.boolean().meta({ description: "A running job that has not moved for `stallAfterMinutes`." }),
    error: z.string().optional().meta({ description: "Why the job failed (or is stalled)." }),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: "Job" });

export const jobListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20).meta({ description: "Jobs per page (1-100)." }),
  cursor: z.string().min(1).max(1024).optional().meta({ description: "The `cursor` of the previous page." }),
});

export const jobList = z
  .object({
    jobs: z.array(jobView),
    cursor: z.string().optional().meta({ description: "Pass it back for the next page; absent on the last." }),
  })
  .meta({ id: "JobList" });

export const jobPath = z.strictObject({ id: anyJobId });

// ---- POST /search ---------------------------------------------------------------------------------

export const searchRequest = z
  .strictObject({
    query: text(1000, "query").meta({ example: "how are chunks embedded?" }),
    collection: collectionName.default(DEFAULT_COLLECTION),
    k: z.number().int().min(1).max(100).default(10).meta({ description: "Results per page." }),
    mode: z.enum(["hybrid", "dense", "bm25"]).default("hybrid"),
    // rerank, rerankTopN, rerankMethod, rerankWeight, rerankDeadlineMs (shared/domain/rerank.ts).
    ...rerankRequestFields,
    fusion: z.enum(["rrf", "weighted"]).default("rrf"),
    weights: z
      .strictObject({ bm25: z.number().min(0).max(100).optional(), dense: z.number().min(0).max(100).optional() })
      .optional()
      .meta({ description: "Retriever weights: RRF multipliers, or the blend of normalised scores (weighted)." }),
    filters: z
      .strictObject({
        documentIds: z.array(z.string().min(1).max(256)).max(1000).optional(),
        contentTypes: z.array(z.string().min(1).max(255)).max(20).optional(),
        metadata: metadata.optional().meta({ description: "Documents whose metadata has every one of these values." }),
      })
      .optional(),
    cursor: z.string().min(1).max(512).optional().meta({ description: "The `nextCursor` of the previous page." }),
  })
  .meta({ id: "SearchRequest" });
export type SearchRequest = z.output<typeof searchRequest>;

// The search response's types (SearchService returns them) come from these schemas: a new field
// is one line here, then `npm run openapi`, a minor API_VERSION bump and a line in the README's
// API changes.

/** Whether the results were reranked, by which model, and why not: the rerank domain's own schema. */
export const rerankReport = rerankReportSchema.meta({
  id: "RerankReport",
  description:
    "Whether the results are ordered by the cross-encoder's combined score, with which model and settings, and " +
    "if not, why (`reason`: disabled, no-model, no-candidates, deadline, error). A model with `randomWeights` is a " +
    "generated test model: its scores carry no relevance.",
});
export const searchScores = z
  .object({
    bm25: z.number().optional(),
    dense: z.number().optional(),
    fused: z.number(),
    rerank: z
      .number()
      .optional()
      .meta({ description: "The cross-encoder's probability that the passage is relevant (reranked results)." }),
    combined: z
      .number()
      .optional()
      .meta({ description: "The rerank score combined with the fused one: what reranked results are ordered by." }),
  })
  .meta({ id: "SearchScores", description: "The score of each stage that ranked the passage." });

export const searchResult = z
  .object({
    documentId,
    chunkId: z.string(),
    collection: z.string(),
    filename: z.string().optional(),
    page: z.number().int().min(1),
    start: z.number().int().min(0),
    end: z.number().int().min(0),
    text: z.string(),
    highlights: z.string().meta({ description: "The text, HTML-escaped, with the query's terms in <mark>…</mark>." }),
    score: z.number().meta({ description: "`scores.combined` when reranked, else `scores.fused`." }),
    scores: searchScores,
  })
  .meta({ id: "SearchResult" });
export type SearchResult = z.output<typeof searchResult>;

export const searchResponse = z
  .object({
    results: z.array(searchResult),
    nextCursor: z.string().optional(),
    timings: z.record(z.string(), z.number()).meta({ description: "Milliseconds spent in each step." }),
    segments: z.number().int().min(0).meta({ description: "Index segments searched." }),
    index: z.string().meta({ description: "The collection's index that answered (its active one)." }),
    model: z.string().meta({ description: "The embedding model of that index's vectors (the query's too)." }),
    shards: z.number().int().min(2).optional().meta({
      description:
        "Shards searched in parallel (each by a search-shard function), when the collection is larger than one shard.",
    }),
    rerank: rerankReport,
  })
  .meta({ id: "SearchResponse" });
export type SearchResponse = z.output<typeof searchResponse>;

// ---- DELETE /documents/{id} -----------------------------------------------------------------------

export const documentPath = z.strictObject({ id: documentId });
export const deleteResponse = z
  .object({ deleted: z.literal(true), documentId, collection: z.string(), revision: z.string() })
  .meta({ id: "DeletedDocument" });

// ---- Collections and their migration to another embedding model ----------------------------------

export const collectionPath = z.strictObject({ name: collectionName });
export const migrationPath = z.strictObject({ name: collectionName, id: migrationId });
/** A collection's index: "1" is the first, each migration adds the next number. */
export const indexId = z
  .string()
  .regex(/^[1-9][0-9]{0,8}$/, "an index id is a positive integer")
  .meta({ example: "2" });
export const indexPath = z.strictObject({ name: collectionName, index: indexId });

const embeddingModelId = z
  .string()
  .min(1)
  .max(100)
  .meta({
    description:
      "An embedding model id of the registry that this deployment runs (its `embeddingModels`): all-minilm-l6-v2-q, " +
      "all-minilm-l6-v2, bge-small-en-v1.5-q, e5-small-v2-q.",
    example: "bge-small-en-v1.5-q",
  });

export const labelledQuery = z
  .strictObject({
    query: text(1000, "query"),
    relevant: z
      .union([
        z.array(documentId).min(1).max(1000),
        z
          .record(documentId, z.number().positive().max(1000))
          .refine((grades) => Object.keys(grades).length > 0, "relevant names no document"),
      ])
      .meta({ description: "The relevant documents: their ids, or id → grade (> 0)." }),
  })
  .meta({ id: "LabelledQuery" });

export const migrationRequest = z
  .strictObject({
    model: embeddingModelId,
    evaluation: z
      .strictObject({ queries: z.array(labelledQuery).min(1).max(200) })
      .optional()
      .meta({
        description:
          "Labelled queries for the evaluation gate: once the new index is ready, both indexes answer them (hybrid, " +
          "k=10) and the migration reports nDCG@10, Recall@10 and MRR@10 of each. A worse new index refuses the cut-over " +
          "unless forced.",
      }),
  })
  .meta({ id: "MigrationRequest" });
export type MigrationRequest = z.output<typeof migrationRequest>;

export const cutOverRequest = z
  .strictObject({
    force: z.boolean().default(false).meta({ description: "Cut over even when the gate found the new index worse." }),
  })
  .meta({ id: "CutOverRequest" });
export type CutOverRequest = z.output<typeof cutOverRequest>;

export const indexView = z
  .object({
    index: indexId,
    model: z.string().optional().meta({ description: "The embedding model of the index's vectors." }),
    active: z.boolean().meta({ description: "Whether search answers from this index." }),
    segments: z.number().int().min(0),
    chunks: z.number().int().min(0),
  })
  .meta({ id: "CollectionIndex" });

const indexScores = z
  .object({
    index: indexId,
    model: z.string(),
    "ndcg@10": z.number().min(0).max(1),
    "recall@10": z.number().min(0).max(1),
    "mrr@10": z.number().min(0).max(1),
  })
  .meta({ id: "IndexScores" });

export const evaluationReport = z
  .union([
    z.object({
      queries: z.number().int().min(1),
      mode: z.literal("hybrid"),
      old: indexScores,
      new: indexScores,
      better: z.enum(["old", "new", "same"]).meta({ description: "By nDCG@10; `same` within 0.005." }),
      evaluatedAt: timestamp,
    }),
    z.object({ queries: z.literal(0), note: z.string() }),
    z.object({ pending: z.literal(true), queries: z.number().int().min(1) }),
  ])
  .meta({
    id: "EvaluationReport",
    description:
      "The gate: old vs new on the labelled queries once the new index is ready; `pending` before; `queries: 0` when " +
      "none were given.",
  });

/** The migration's re-embedding, counted like an upload's job (its id is the migration's). */
export const migrationJob = z
  .object({ ...jobView.shape, jobId: z.string(), documentId: z.string() })
  .meta({ id: "MigrationJob", description: "The re-embedding's progress, counted like an upload's job." });

export const MIGRATION_STATES = ["RUNNING", "READY", "CUT_OVER", "ROLLED_BACK", "FAILED"] as const;
export const migrationView = z
  .object({
    migrationId,
    from: z.object({ index: indexId, model: z.string() }),
    to: z.object({ index: indexId, model: z.string() }),
    state: z.enum(MIGRATION_STATES).meta({
      description:
        "RUNNING (re-embedding into the new index), READY (every chunk in it: cut over when you like), CUT_OVER, " +
        "ROLLED_BACK, FAILED (`job.error` says why).",
    }),
    job: migrationJob.optional(),
    evaluation: evaluationReport,
    startedAt: timestamp,
    cutOverAt: timestamp.optional(),
    rolledBackAt: timestamp.optional(),
  })
  .meta({ id: "Migration" });

export const collectionView = z
  .object({
    collection: collectionName,
    activeIndex: indexId,
    model: z.string().optional().meta({ description: "The active index's embedding model." }),
    indexes: z.array(indexView),
    migration: migrationView.optional().meta({ description: "The collection's latest migration, if any." }),
  })
  .meta({ id: "Collection" });

export const dropIndexResponse = z
  .object({
    dropped: indexId,
    segments: z.number().int().min(0).meta({ description: "Segment objects deleted." }),
  })
  .meta({ id: "DroppedIndex" });

// ---- Dead letters ---------------------------------------------------------------------------------

export const deadLetter = z
  .object({
    key: z.string(),
    functionName: z.string(),
    topic: z.string(),
    records: z.number().int().min(0),
    failedAt: z.string(),
    attempts: z.number().int().optional(),
    jobIds: z.array(z.string()).meta({ description: "The caller's jobs in the batch (never another tenant's)." }),
    tenants: z.array(z.string()),
  })
  .meta({ id: "DeadLetter" });
export const deadLetterList = z.object({ deadLetters: z.array(deadLetter) }).meta({ id: "DeadLetterList" });
export const redriveResponse = z.object({ redriven: z.array(deadLetter) }).meta({ id: "RedriveResult" });

// ---- Health ---------------------------------------------------------------------------------------

export const health = z.object({ status: z.literal("ok"), stage: z.string() }).meta({ id: "Health" });

// ---- Errors: RFC 9457 problem details -------------------------------------------------------------

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Every code the API answers with, and its HTTP status. */
export const PROBLEMS = {
  INVALID_JSON: 400,
  INVALID_REQUEST: 400,
  INVALID_CURSOR: 400,
  UNKNOWN_MODEL: 400,
  UNAUTHORIZED: 401,
  INVALID_TENANT: 403,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  DOCUMENT_NOT_FOUND: 404,
  COLLECTION_NOT_FOUND: 404,
  MIGRATION_NOT_FOUND: 404,
  INDEX_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REDRIVE_IN_PROGRESS: 409,
  MIGRATION_EXISTS: 409,
  SAME_MODEL: 409,
  MIGRATION_NOT_READY: 409,
  EVALUATION_GATE: 409,
  NOT_CUT_OVER: 409,
  INDEX_DROPPED: 409,
  INDEX_ACTIVE: 409,
  COLLECTION_CHANGED: 409,
  TOO_LARGE: 413,
  UNSUPPORTED_CONTENT_TYPE: 415,
  INTERNAL: 500,
} as const;
export type ProblemCode = keyof typeof PROBLEMS;

export const problem = z
  .object({
    type: z.string().meta({
      description: "`about:blank`: the status says what kind of problem it is, `code` says which.",
      example: "about:blank",
    }),
    title: z.string().meta({ description: "The HTTP status phrase.", example: "Bad Request" }),
    status: z.number().int().min(400).max(599),
    detail: z.string().meta({
      description: "What went wrong, for a person.",
      example: "metadata.__proto__: a metadata key must be 1-64 characters: a letter or digit, then …",
    }),
    code: z
      .enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]])
      .meta({ description: "What went wrong, for a program: stable; new codes may be added." }),
    errors: z
      .array(
        z.object({
          in: z.enum(["body", "query", "path"]),
          pointer: z.string().meta({ description: "JSON Pointer to the offending value.", example: "/metadata" }),
          detail: z.string(),
        }),
      )
      .optional()
      .meta({ description: "Each problem with the request (400 INVALID_REQUEST)." }),
    requestId: z.string().optional().meta({ description: "The request's id, for the logs." }),
  })
  .meta({ id: "Problem", description: "An error, as RFC 9457 problem details (application/problem+json)." });
export type Problem = z.output<typeof problem>;

// ---- The server's types are the contract's ------------------------------------------------------

/** Compiles only when A and B are the same type. */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const same = <A, B>(proof: Same<A, B>) => proof;
same<JobView, z.output<typeof jobView>>(true);
// The dead letters' and presigned uploads' own types (shared/stages, shared/adapters, which import
// this module) are proved the same in test/unit/api-contract.test.ts.
