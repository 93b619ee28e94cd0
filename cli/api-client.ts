/**
 * A small client of DataDistiller's public HTTP API, shared by the CLI, the benchmarks and the
 * end-to-end tests. It only speaks HTTP, so it works the same against the local stack and a
 * deployed stage.
 */

import type { z } from "zod";
import type {
  collectionView,
  deadLetter,
  deleteResponse,
  dropIndexResponse,
  jobState,
  jobView,
  migrationRequest,
  migrationView,
  Problem,
  presignedUpload,
  searchRequest,
  searchResponse,
  searchResult,
  uploadRequest,
  uploadResponse,
} from "../shared/api/schemas.ts";

// The API's types, taken from the zod schemas the handlers validate with and the OpenAPI document
// is generated from (imported as types only: the client still speaks nothing but HTTP). A change
// to the contract that this client or its users do not follow fails the typecheck.
export type JobState = z.output<typeof jobState>;
export type PresignedUpload = z.output<typeof presignedUpload>;
export type UploadRequest = z.input<typeof uploadRequest>;
export type UploadTicket = z.output<typeof uploadResponse>;
export type JobStatus = z.output<typeof jobView>;
export type SearchRequest = z.input<typeof searchRequest>;
export type SearchHit = z.output<typeof searchResult>;
export type SearchResponse = z.output<typeof searchResponse>;
export type DeadLetter = z.output<typeof deadLetter>;
export type DeletedDocument = z.output<typeof deleteResponse>;
export type CollectionView = z.output<typeof collectionView>;
export type MigrationRequest = z.input<typeof migrationRequest>;
export type MigrationView = z.output<typeof migrationView>;
export type DroppedIndex = z.output<typeof dropIndexResponse>;

/** A non-2xx answer: the API's problem (RFC 9457), or whatever else answered (S3, API Gateway). */
export class ApiError extends Error {
  readonly code: Problem["code"] | undefined;

  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const problem = (typeof body === "object" && body !== null ? body : {}) as Partial<Problem> & { message?: string };
    const text = typeof body === "string" ? body : JSON.stringify(body);
    super(`HTTP ${status}: ${problem.detail ?? problem.message ?? text}`);
    this.name = "ApiError";
    this.code = problem.code;
  }
}

export class DataDistillerClient {
  constructor(
    readonly endpoint: string,
    private readonly token: string | undefined,
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(new URL(path, this.endpoint), {
      method,
      headers: {
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed as T;
  }

  requestUpload(request: UploadRequest): Promise<UploadTicket> {
    return this.call("POST", "/uploads", request);
  }

  /** GET /health (no token needed): true when the API answers. */
  async health(): Promise<boolean> {
    try {
      return (await fetch(new URL("/health", this.endpoint))).ok;
    } catch {
      return false;
    }
  }

  job(jobId: string): Promise<JobStatus> {
    return this.call("GET", `/jobs/${encodeURIComponent(jobId)}`);
  }

  /** The caller's jobs, newest first; pass the returned cursor for the next page. */
  listJobs(options: { limit?: number; cursor?: string } = {}): Promise<{ jobs: JobStatus[]; cursor?: string }> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    return this.call("GET", `/jobs${query.size ? `?${query}` : ""}`);
  }

  /** Dead-lettered batches that carry the caller's jobs, not yet replayed. */
  deadLetters(): Promise<{ deadLetters: DeadLetter[] }> {
    return this.call("GET", "/dead-letters");
  }

  /** Replays the caller's dead letters onto their topics (once the cause is fixed). */
  redriveDeadLetters(): Promise<{ redriven: DeadLetter[] }> {
    return this.call("POST", "/dead-letters/redrive");
  }

  search(request: SearchRequest): Promise<SearchResponse> {
    return this.call("POST", "/search", request);
  }

  /** A collection's indexes, active index and model, and its migration if there is one. */
  collection(name: string): Promise<CollectionView> {
    return this.call("GET", `/collections/${encodeURIComponent(name)}`);
  }

  /** Starts re-embedding a collection with another model into a new index (search keeps the old one meanwhile). */
  startMigration(name: string, request: MigrationRequest): Promise<MigrationView> {
    return this.call("POST", `/collections/${encodeURIComponent(name)}/migrations`, request);
  }

  migration(name: string, migrationId: string): Promise<MigrationView> {
    return this.call("GET", `/collections/${encodeURIComponent(name)}/migrations/${encodeURIComponent(migrationId)}`);
  }

  /** Makes the migration's new index answer searches (refused before it is ready, or when the gate says worse unless forced). */
  cutOver(name: string, migrationId: string, options: { force?: boolean } = {}): Promise<MigrationView> {
    return this.call(
      "POST",
      `/collections/${encodeURIComponent(name)}/migrations/${encodeURIComponent(migrationId)}/cutover`,
      options,
    );
  }

  rollBack(name: string, migrationId: string): Promise<MigrationView> {
    return this.call(
      "POST",
      `/collections/${encodeURIComponent(name)}/migrations/${encodeURIComponent(migrationId)}/rollback`,
    );
  }

  /** Drops an index that is not the active one. */
  dropIndex(name: string, index: string): Promise<DroppedIndex> {
    return this.call("DELETE", `/collections/${encodeURIComponent(name)}/indexes/${encodeURIComponent(index)}`);
  }

  deleteDocument(documentId: string): Promise<DeletedDocument> {
    return this.call("DELETE", `/documents/${encodeURIComponent(documentId)}`);
  }

  /** Asks for an upload, then sends the bytes the way the API said (POST form or PUT). */
  async ingest(
    file: { filename: string; contentType: string; bytes: Uint8Array },
    options: Pick<UploadRequest, "collection" | "documentId" | "metadata"> = {},
  ): Promise<UploadTicket> {
    const ticket = await this.requestUpload({
      filename: file.filename,
      contentType: file.contentType,
      size: file.bytes.byteLength,
      ...options,
    });
    await uploadFile(ticket.upload, file.bytes, file.contentType);
    return ticket;
  }

  /** Polls a job until it completes or fails. */
  async waitForJob(
    jobId: string,
    options: { timeoutMs?: number; intervalMs?: number; onProgress?: (job: JobStatus) => void } = {},
  ): Promise<JobStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    for (;;) {
      const job = await this.job(jobId);
      options.onProgress?.(job);
      if (job.state === "COMPLETED" || job.state === "FAILED") return job;
      if (Date.now() > deadline)
        throw new Error(`job ${jobId} still ${job.state} after ${options.timeoutMs ?? 300_000} ms`);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
    }
  }
}

/** Sends a file with a presigned upload; S3 enforces its conditions and answers 4xx when one fails. */
export async function uploadFile(upload: PresignedUpload, bytes: Uint8Array, contentType: string): Promise<void> {
  // Blob and fetch take any Uint8Array at run time; the DOM typings (the web console compiles this
  // file too) want one backed by an ArrayBuffer.
  const body = bytes as Uint8Array<ArrayBuffer>;
  let response: Response;
  if (upload.method === "POST") {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    form.append("file", new Blob([body], { type: contentType }));
    response = await fetch(upload.url, { method: "POST", body: form });
  } else {
    response = await fetch(upload.url, {
      method: "PUT",
      headers: upload.headers,
      body,
    });
  }
  if (!response.ok) throw new ApiError(response.status, await response.text());
}
