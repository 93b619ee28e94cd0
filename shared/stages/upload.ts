import { createHash, randomUUID } from "node:crypto";
import type { z } from "zod";
import type { JobStore } from "../adapters/job-store.ts";
import type { ObjectStore } from "../adapters/object-store.ts";
import { NAME_PATTERN, type UploadRequest, type uploadResponse } from "../api/schemas.ts";

/** Upload requests: what a client may ask for, and where its file goes. */

export { DEFAULT_COLLECTION, type UploadRequest, uploadRequest } from "../api/schemas.ts";

/** When the sweeper first looks at a job still waiting for its upload (a lost upload event is recovered then). */
export const FIRST_UPLOAD_CHECK_MS = 2 * 60_000;

export type UploadResponse = z.output<typeof uploadResponse>;

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

/**
 * uploads/<tenant>/<jobId>/file: every key sits under its tenant's prefix. The filename is only
 * metadata (kept on the job): whatever it is (`..`, slashes, spaces, any script), the key and so
 * the presigned URL stay the same plain path S3 signs and serves as it is.
 */
export const uploadKey = (tenant: string, jobId: string) => {
  // Tenants are validated when the token is read; this keeps a bad one from ever naming a key.
  if (!NAME_PATTERN.test(tenant) || !NAME_PATTERN.test(jobId)) throw new Error(`not a key segment: ${tenant}/${jobId}`);
  return `uploads/${tenant}/${jobId}/file`;
};

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
  const key = uploadKey(tenant, jobId);
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
