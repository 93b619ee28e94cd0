import { z } from "zod";
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponseObject } from "zod-openapi";
import {
  API_VERSION,
  deadLetterList,
  deleteResponse,
  documentPath,
  health,
  jobList,
  jobListQuery,
  jobPath,
  jobView,
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
  409: problemResponse("Conflict", "Another redrive is running; try again when it is done."),
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
