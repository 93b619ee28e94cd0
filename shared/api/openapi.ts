import { z } from "zod";
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponseObject } from "zod-openapi";
import {
  API_VERSION,
  collectionPath,
  collectionView,
  cutOverRequest,
  deadLetterList,
  deleteResponse,
  documentPath,
  dropIndexResponse,
  health,
  indexPath,
  jobList,
  jobListQuery,
  jobPath,
  jobView,
  migrationPath,
  migrationRequest,
  migrationView,
  PROBLEM_CONTENT_TYPE,
  problem,
  redriveResponse,
  searchRequest,
  searchResponse,
  uploadRequest,
  uploadResponse,
} from "./schemas.ts";

/**
 * The OpenAPI 3.1 description of the HTTP API, generated from the zod schemas the handlers
 * validate with. `npm run openapi` writes it to docs/openapi.json; the API serves it at
 * GET /openapi.json.
 */

const problemResponse = (id: string, description: string, extra: Partial<ZodOpenApiResponseObject> = {}) =>
  ({
    id,
    description,
    content: { [PROBLEM_CONTENT_TYPE]: { schema: problem } },
    ...extra,
  }) satisfies ZodOpenApiResponseObject;

const errors = {
  400: problemResponse("BadRequest", "The request is malformed: `errors` names each problem."),
  401: problemResponse(
    "Unauthorized",
    "No bearer token, or one that is malformed, expired, or not from the configured issuer and audience.",
    {
      headers: z.object({
        "www-authenticate": z.string().meta({
          description:
            'RFC 6750: `Bearer realm="datadistiller"` with `error` and `error_description` when a token was sent.',
        }),
      }),
    },
  ),
  403: problemResponse("Forbidden", "The token is valid but its tenant claim is missing or not a tenant id."),
  404: problemResponse("NotFound", "No such resource for the caller's tenant (or an id that cannot name one)."),
  409: problemResponse(
    "Conflict",
    "The resource's state refuses the request now; `code` says why (e.g. REDRIVE_IN_PROGRESS, MIGRATION_NOT_READY).",
  ),
  413: problemResponse("PayloadTooLarge", "The declared size is over the maximum upload size."),
  415: problemResponse("UnsupportedMediaType", "The declared content type is not one the platform accepts."),
  500: problemResponse("InternalError", "An unexpected error; the logs have it under `requestId`."),
} as const;
type ErrorStatus = keyof typeof errors;
const errorResponses = (...statuses: ErrorStatus[]) =>
  Object.fromEntries(statuses.map((status) => [status, errors[status]]));

const json = (schema: z.ZodType, example?: unknown) => ({
  content: { "application/json": { schema, ...(example === undefined ? {} : { example }) } },
});

/** The operations, by path and method: the same routes infra/api.ts declares. */
export const paths: Record<string, Record<string, ZodOpenApiOperationObject>> = {
  "/uploads": {
    post: {
      operationId: "createUpload",
      tags: ["documents"],
      summary: "Ask for an upload: a job and a presigned URL for the file",
      description:
        "Creates a job (PENDING_UPLOAD) and answers at once with a presigned upload: send the file straight to S3 " +
        "with it (once, before `expiresAt`), then follow the job. The presigned PUT signs the content type and the exact " +
        "size, so S3 refuses any other file. Uploading the same filename to the same collection again replaces the " +
        "document once the new version is indexed.",
      requestBody: {
        required: true,
        ...json(uploadRequest, {
          filename: "notes.md",
          contentType: "text/markdown",
          size: 2048,
          collection: "default",
          metadata: { author: "Ada Lovelace", year: 1843 },
        }),
      },
      responses: {
        202: {
          description: "The job exists; upload the file as `upload` says.",
          headers: z.object({ location: z.string().meta({ description: "The job: `/jobs/{jobId}`." }) }),
          ...json(uploadResponse, {
            jobId: "7b0e4a52-6f1d-4f0b-9d7e-2c3a1b5e8f90",
            documentId: "doc-3f2a9c0d41b7e5a8c912",
            upload: {
              method: "PUT",
              url: "https://uploads.s3.amazonaws.com/uploads/acme/7b0e4a52-6f1d-4f0b-9d7e-2c3a1b5e8f90/file?X-Amz-Signature=…",
              headers: { "Content-Type": "text/markdown" },
            },
            expiresAt: "2026-01-01T12:15:00.000Z",
          }),
        },
        ...errorResponses(400, 401, 403, 413, 415, 500),
      },
    },
  },
  "/jobs": {
    get: {
      operationId: "listJobs",
      tags: ["jobs"],
      summary: "The caller's jobs, newest first, a page at a time",
      requestParams: { query: jobListQuery },
      responses: {
        200: { description: "A page of jobs.", ...json(jobList) },
        ...errorResponses(400, 401, 403, 500),
      },
    },
  },
  "/jobs/{id}": {
    get: {
      operationId: "getJob",
      tags: ["jobs"],
      summary: "One job: state, counts, percentages, stage times, failure reason",
      description: "Another tenant's job answers 404, exactly like a missing one.",
      requestParams: { path: jobPath },
      responses: {
        200: { description: "The job.", ...json(jobView) },
        ...errorResponses(401, 403, 404, 500),
      },
    },
  },
  "/search": {
    post: {
      operationId: "search",
      tags: ["search"],
      summary: "Hybrid search over a collection: BM25 and dense retrieval, fused, reranked",
      requestBody: {
        required: true,
        ...json(searchRequest, { query: "how are chunks embedded?", k: 5, filters: { metadata: { year: 1843 } } }),
      },
      responses: {
        200: { description: "Ranked passages, best first.", ...json(searchResponse) },
        ...errorResponses(400, 401, 403, 500),
      },
    },
  },
  "/documents/{id}": {
    delete: {
      operationId: "deleteDocument",
      tags: ["documents"],
      summary: "Remove a document from search at once (its chunks are dropped by the next compaction)",
      requestParams: { path: documentPath },
      responses: {
        200: { description: "The document's live version is gone from search.", ...json(deleteResponse) },
        ...errorResponses(401, 403, 404, 500),
      },
    },
  },
  "/collections/{name}": {
    get: {
      operationId: "getCollection",
      tags: ["collections"],
      summary: "A collection's indexes, the embedding model of each, the active one, and its migration",
      description:
        "A collection exists once something was indexed in it; another tenant's answers 404 like a missing one.",
      requestParams: { path: collectionPath },
      responses: {
        200: { description: "The collection.", ...json(collectionView) },
        ...errorResponses(401, 403, 404, 500),
      },
    },
  },
  "/collections/{name}/migrations": {
    post: {
      operationId: "startMigration",
      tags: ["collections"],
      summary: "Move the collection to another embedding model: re-embed it into a new index in the background",
      description:
        "Creates a new index with the model and re-embeds the collection's stored chunks into it through the ingestion " +
        "pipeline; search keeps answering from the active index, and documents uploaded meanwhile land in both. Follow " +
        "the migration until READY, then cut over. One migration at a time: the index not used must be dropped before " +
        "the next (409 MIGRATION_EXISTS). A model this deployment does not run is 400 UNKNOWN_MODEL; the model the " +
        "collection already uses is 409 SAME_MODEL.",
      requestParams: { path: collectionPath },
      requestBody: {
        required: true,
        ...json(migrationRequest, {
          model: "bge-small-en-v1.5-q",
          evaluation: { queries: [{ query: "how are chunks embedded?", relevant: ["doc-3f2a9c0d41b7e5a8c912"] }] },
        }),
      },
      responses: {
        202: {
          description: "The migration started.",
          headers: z.object({ location: z.string().meta({ description: "The migration's URL." }) }),
          ...json(migrationView),
        },
        ...errorResponses(400, 401, 403, 404, 409, 500),
      },
    },
  },
  "/collections/{name}/migrations/{id}": {
    get: {
      operationId: "getMigration",
      tags: ["collections"],
      summary: "A migration's progress and, once ready, its evaluation gate",
      requestParams: { path: migrationPath },
      responses: {
        200: { description: "The migration.", ...json(migrationView) },
        ...errorResponses(401, 403, 404, 500),
      },
    },
  },
  "/collections/{name}/migrations/{id}/cutover": {
    post: {
      operationId: "cutOverMigration",
      tags: ["collections"],
      summary: "Make the migration's new index answer searches (one switch)",
      description:
        "Refused (409 MIGRATION_NOT_READY) before every chunk is in the new index, and (409 EVALUATION_GATE) when the " +
        "labelled queries rank worse on it, unless `force`. The old index is kept, and kept current, until dropped.",
      requestParams: { path: migrationPath },
      requestBody: { required: false, ...json(cutOverRequest, { force: false }) },
      responses: {
        200: { description: "The migration, cut over.", ...json(migrationView) },
        ...errorResponses(400, 401, 403, 404, 409, 500),
      },
    },
  },
  "/collections/{name}/migrations/{id}/rollback": {
    post: {
      operationId: "rollBackMigration",
      tags: ["collections"],
      summary: "Make the old index answer searches again",
      description:
        "Only after a cut-over (409 NOT_CUT_OVER), and while the old index was not dropped (409 INDEX_DROPPED).",
      requestParams: { path: migrationPath },
      responses: {
        200: { description: "The migration, rolled back.", ...json(migrationView) },
        ...errorResponses(401, 403, 404, 409, 500),
      },
    },
  },
  "/collections/{name}/indexes/{index}": {
    delete: {
      operationId: "dropIndex",
      tags: ["collections"],
      summary: "Drop an index that is not the active one (its segments are deleted)",
      description:
        "The old index after a cut-over, or a migration's new index to cancel it. The active index is refused " +
        "(409 INDEX_ACTIVE).",
      requestParams: { path: indexPath },
      responses: {
        200: { description: "The index is gone.", ...json(dropIndexResponse) },
        ...errorResponses(401, 403, 404, 409, 500),
      },
    },
  },
  "/dead-letters": {
    get: {
      operationId: "listDeadLetters",
      tags: ["dead letters"],
      summary: "Batches the pipeline gave up on that carry the caller's jobs",
      responses: {
        200: { description: "Dead letters not yet redriven.", ...json(deadLetterList) },
        ...errorResponses(401, 403, 500),
      },
    },
  },
  "/dead-letters/redrive": {
    post: {
      operationId: "redriveDeadLetters",
      tags: ["dead letters"],
      summary: "Replay the caller's dead letters once their cause is fixed",
      description: "Their jobs re-open at the stage that failed; nothing is counted twice. One redrive runs at a time.",
      responses: {
        200: { description: "What was replayed.", ...json(redriveResponse) },
        ...errorResponses(401, 403, 409, 500),
      },
    },
  },
  "/health": {
    get: {
      operationId: "health",
      tags: ["meta"],
      summary: "Liveness: answers without touching any dependency",
      security: [],
      responses: { 200: { description: "The API answers.", ...json(health, { status: "ok", stage: "prod" }) } },
    },
  },
  "/openapi.json": {
    get: {
      operationId: "openApiDocument",
      tags: ["meta"],
      summary: "This document",
      security: [],
      responses: {
        200: {
          description: "The OpenAPI 3.1 description of the API.",
          ...json(z.looseObject({ openapi: z.string(), info: z.looseObject({ version: z.string() }) })),
        },
      },
    },
  },
};

/** Methods of each path, upper case, as a 405's Allow header names them. */
export const allowedMethods = (path: string): string[] =>
  Object.keys(paths[path] ?? {}).map((method) => method.toUpperCase());

/** The path template a request path matches (`/jobs/abc` → `/jobs/{id}`), if any. */
export function matchPath(requestPath: string): string | undefined {
  return Object.keys(paths).find((template) =>
    new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+").replace(/\./g, "\\.")}$`).test(requestPath),
  );
}

export function buildOpenApiDocument() {
  return createDocument({
    openapi: "3.1.0",
    info: {
      title: "DataDistiller API",
      version: API_VERSION,
      description:
        "Document ingestion and hybrid search. Upload returns a job at once and a presigned URL for the file; a " +
        "pipeline splits, embeds and indexes it; search fuses BM25 and dense retrieval and reranks.\n\n" +
        "**Auth**: every operation but `/health` and `/openapi.json` needs `Authorization: Bearer <JWT>` from the " +
        "configured issuer and audience; the tenant is the token's tenant claim.\n\n" +
        "**Errors**: every 4xx and 5xx the API answers is an RFC 9457 problem (`application/problem+json`) with a " +
        "stable `code`. Only API Gateway's own answers differ: throttling (429), a function that crashed or timed out " +
        '(500/503/504) carry `{"message": "…"}`.\n\n' +
        "**Versions**: `info.version` is semver. Additive changes (new operations, optional request fields, response " +
        "fields, error codes) raise the minor version, and clients must ignore response fields they do not know. " +
        "Breaking changes raise the major version and are announced in the README's API changelog first.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    servers: [{ url: "/", description: "The API serving this document" }],
    tags: [
      { name: "documents", description: "Uploads and deletions" },
      { name: "jobs", description: "Ingestion progress" },
      { name: "search", description: "Hybrid search" },
      { name: "collections", description: "A collection's indexes and its move to another embedding model" },
      { name: "dead letters", description: "Batches the pipeline gave up on" },
      { name: "meta", description: "Health and this description" },
    ],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "A JWT from the configured issuer (jwtIssuer) for its audience (jwtAudience), with a tenant claim.",
        },
      },
    },
    paths,
  });
}
