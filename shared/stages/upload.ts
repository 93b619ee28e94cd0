import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import type { JobStore } from "../adapters/job-store.ts";
import type { ObjectStore, PresignedUpload } from "../adapters/object-store.ts";

/** Upload requests: what a client may ask for, and where its file goes. */

export const DEFAULT_COLLECTION = "default";

/** When the sweeper first looks at a job still waiting for its upload (a lost upload event is recovered then). */
export const FIRST_UPLOAD_CHECK_MS = 2 * 60_000;

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "1-64 letters, digits, '_', '.' or '-'");

export const uploadRequest = z.object({
  filename: z.string().trim().min(1).max(255),
  contentType: z
    .string()
    .trim()
    .toLowerCase()
    .transform((value) => value.split(";")[0]?.trim() ?? value),
  size: z.number().int().positive(),
  collection: name.default(DEFAULT_COLLECTION),
  /** Optional: name the document yourself; by default it is the filename within the collection. */
  documentId: name.optional(),
  metadata: z
    .record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean()]))
    .refine((value) => Object.keys(value).length <= 32, "at most 32 metadata keys")
    .default({}),
});
export type UploadRequest = z.infer<typeof uploadRequest>;

export interface UploadResponse {
  jobId: string;
  documentId: string;
  upload: PresignedUpload;
  expiresAt: string;
}

export interface UploadPolicy {
  bucket: string;
  allowedContentTypes: string[];
  maxUploadBytes: number;
  ttlSeconds: number;
  method: "PUT" | "POST";
}

/** A policy violation: the API answers it with 400 and this code. */
export class UploadRejected extends Error {
  constructor(
    readonly code: "UNSUPPORTED_CONTENT_TYPE" | "TOO_LARGE",
    message: string,
  ) {
    super(message);
    this.name = "UploadRejected";
  }
}

/** Same tenant, collection and filename → same document: uploading it again replaces the old version. */
export const documentIdFor = (tenant: string, collection: string, filename: string) =>
  `doc-${createHash("sha256").update(`${tenant}\n${collection}\n${filename}`).digest("hex").slice(0, 20)}`;

/** uploads/<tenant>/<jobId>/<filename>: every key sits under its tenant's prefix. */
export const uploadKey = (tenant: string, jobId: string, filename: string) =>
  `uploads/${tenant}/${jobId}/${filename.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(-128)}`;

/** Reads tenant and job id back from an upload key; undefined for keys outside the layout. */
export function parseUploadKey(key: string): { tenant: string; jobId: string } | undefined {
  const match = /^uploads\/([^/]+)\/([^/]+)\/[^/]+$/.exec(key);
  return match?.[1] && match[2] ? { tenant: match[1], jobId: match[2] } : undefined;
}

/** Validates the request against the policy, records the job, and presigns an upload S3 will enforce. */
export async function requestUpload(
  tenant: string,
  request: UploadRequest,
  policy: UploadPolicy,
  deps: { jobs: JobStore; objects: ObjectStore; now?: () => Date },
): Promise<UploadResponse> {
  if (!policy.allowedContentTypes.includes(request.contentType)) {
    throw new UploadRejected(
      "UNSUPPORTED_CONTENT_TYPE",
      `content type ${request.contentType} is not accepted; allowed: ${policy.allowedContentTypes.join(", ")}`,
    );
  }
  if (request.size > policy.maxUploadBytes) {
    throw new UploadRejected(
      "TOO_LARGE",
      `size ${request.size} bytes exceeds the maximum of ${policy.maxUploadBytes} bytes`,
    );
  }
  const jobId = randomUUID();
  const documentId = request.documentId ?? documentIdFor(tenant, request.collection, request.filename);
  const key = uploadKey(tenant, jobId, request.filename);
  const now = deps.now?.() ?? new Date();
  const expiresAt = new Date(now.getTime() + policy.ttlSeconds * 1000);
  await deps.jobs.create(
    {
      jobId,
      tenant,
      documentId,
      collection: request.collection,
      filename: request.filename,
      contentType: request.contentType,
      size: request.size,
      metadata: request.metadata,
      objectKey: key,
      uploadExpiresAt: expiresAt.toISOString(),
    },
    // The sweeper looks at the job then: a lost upload event is recovered, an upload that never
    // came fails the job once the URL expired (shared/stages/sweeper.ts).
    new Date(now.getTime() + FIRST_UPLOAD_CHECK_MS),
  );
  const upload = await deps.objects.presignUpload({
    bucket: policy.bucket,
    key,
    contentType: request.contentType,
    // S3 refuses a file larger than the client declared (and the declared size is within the maximum).
    maxBytes: request.size,
    ttlSeconds: policy.ttlSeconds,
    method: policy.method,
  });
  return { jobId, documentId, upload, expiresAt: expiresAt.toISOString() };
}
