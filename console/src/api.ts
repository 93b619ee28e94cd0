/**
 * The console's client of the public HTTP API. The API's types come from shared/ as types only;
 * at run time this is nothing but fetch (and XMLHttpRequest for upload progress).
 */
import type { JobView } from "../../shared/jobs.ts";
import type { PresignedUpload } from "../../shared/object-store.ts";
import type {
  SearchRequest as ApiSearchRequest,
  SearchResponse as ApiSearchResponse,
} from "../../shared/search-service.ts";
import type { UploadResponse } from "../../shared/uploads.ts";

export type JobStatus = JobView;
export type UploadTicket = UploadResponse;
export type SearchResponse = Omit<ApiSearchResponse, "segments">;
export type SearchRequest = Partial<ApiSearchRequest> & { query: string };

/** A non-2xx answer, with the API's JSON error ({error: {code, message}} or API Gateway's {message}). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const detail = (body as { error?: { message?: string }; message?: string } | undefined) ?? {};
    super(`HTTP ${status}: ${detail.error?.message ?? detail.message ?? JSON.stringify(body)}`);
    this.name = "ApiError";
  }
}

/** What `GET /dead-letters` lists (the caller's jobs only). */
export interface DeadLetter {
  key: string;
  functionName: string;
  topic: string;
  records: number;
  failedAt: string;
  attempts?: number;
  jobIds: string[];
  tenants: string[];
}

export const ALLOWED_TYPES = ["application/pdf", "text/plain", "text/markdown", "text/html"] as const;
const BY_EXTENSION: Readonly<Record<string, string>> = {
  pdf: "application/pdf",
  txt: "text/plain",
  text: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
};

/** The content type to declare for a file: by extension (browsers often leave .md untyped), else the browser's. */
export function contentTypeOf(file: File): string | undefined {
  const extension = /\.([^.]+)$/.exec(file.name)?.[1]?.toLowerCase() ?? "";
  const type = BY_EXTENSION[extension] ?? file.type.split(";")[0]?.trim() ?? "";
  return (ALLOWED_TYPES as readonly string[]).includes(type) ? type : undefined;
}

export class ConsoleApi {
  constructor(
    readonly endpoint: string,
    private readonly token: string | undefined,
  ) {}

  requestUpload(file: File, contentType: string, collection?: string): Promise<UploadTicket> {
    return this.call("POST", "/uploads", {
      filename: file.name,
      contentType,
      size: file.size,
      ...(collection ? { collection } : {}),
    });
  }

  job(jobId: string): Promise<JobStatus> {
    return this.call("GET", `/jobs/${encodeURIComponent(jobId)}`);
  }

  /** The caller's jobs, newest first. */
  listJobs(): Promise<{ jobs: JobStatus[]; cursor?: string }> {
    return this.call("GET", "/jobs");
  }

  search(request: SearchRequest): Promise<SearchResponse> {
    return this.call("POST", "/search", request);
  }

  deleteDocument(documentId: string): Promise<{ deleted: boolean; documentId: string }> {
    return this.call("DELETE", `/documents/${encodeURIComponent(documentId)}`);
  }

  deadLetters(): Promise<{ deadLetters: DeadLetter[] }> {
    return this.call("GET", "/dead-letters");
  }

  redriveDeadLetters(): Promise<{ redriven: DeadLetter[] }> {
    return this.call("POST", "/dead-letters/redrive");
  }

  async health(): Promise<boolean> {
    try {
      return (await fetch(new URL("/health", this.endpoint))).ok;
    } catch {
      return false;
    }
  }

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
}

/**
 * Sends the file where the API said (presigned PUT, or POST form), straight to S3 from the
 * browser, reporting progress. XMLHttpRequest because fetch reports no upload progress.
 */
export function uploadWithProgress(
  upload: PresignedUpload,
  file: File,
  contentType: string,
  onProgress: (fraction: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new ApiError(request.status, s3Message(request.responseText)));
    });
    request.addEventListener("error", () =>
      reject(new Error("the upload to S3 failed (network error or CORS: is this origin in corsAllowedOrigins?)")),
    );
    if (upload.method === "POST") {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields ?? {})) form.append(name, value);
      form.append("file", file);
      request.send(form);
    } else {
      for (const [name, value] of Object.entries(upload.headers ?? { "content-type": contentType })) {
        request.setRequestHeader(name, value);
      }
      request.send(file);
    }
  });
}

/** S3 answers errors as XML: keep the message. */
function s3Message(xml: string): { message: string } {
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1];
  return { message: [code, message].filter(Boolean).join(": ") || xml.slice(0, 200) || "upload refused" };
}
