import { Duration } from "aws-cdk-lib";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import { Construct } from "constructs";
import type { Api } from "../api.ts";
import { environmentOf, type FunctionDefaults, nodeFunction } from "../lambda-defaults.ts";
import type { Network } from "../network.ts";
import { KEYS, type Storage } from "../storage.ts";
import { type Streaming, TOPICS } from "../streaming.ts";

export interface UploadApiProps extends FunctionDefaults {
  readonly api: Api;
  readonly network: Network;
  readonly storage: Storage;
  readonly streaming: Streaming;
  /**
   * Content types a client may upload.
   * @default ["application/pdf", "text/plain", "text/markdown", "text/html"]
   */
  readonly allowedContentTypes?: string[];
  /**
   * Largest upload, bytes (413 above it; S3 refuses a larger body than announced).
   * @default 52428800 (50 MiB)
   */
  readonly maxUploadBytes?: number;
  /**
   * PUT: a presigned URL signing the type and exact length; POST: a presigned form policy.
   * @default "PUT"
   */
  readonly uploadMethod?: "POST" | "PUT";
  /**
   * Lifetime of a presigned upload, seconds.
   * @default 900
   */
  readonly uploadUrlTtlSeconds?: number;
  /**
   * Days a finished job stays readable before its TTL removes it.
   * @default 30
   */
  readonly jobRetentionDays?: number;
  /**
   * The JWT claim that names the tenant.
   * @default "tenant"
   */
  readonly tenantClaim?: string;
  /**
   * Minutes without progress after which a running job is reported stalled.
   * @default 10
   */
  readonly stallAfterMinutes?: number;
}

/**
 * The upload side of the API and the start of the pipeline: POST /uploads creates a job and a
 * presigned upload (upload-url); the upload's S3 ObjectCreated event checks the object and
 * publishes documents.uploaded (on-upload); GET /jobs and /jobs/{id} report progress (job-status).
 */
export class UploadApi extends Construct {
  readonly uploadUrl: nodejs.NodejsFunction;
  readonly onUpload: nodejs.NodejsFunction;
  readonly jobStatus: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: UploadApiProps) {
    super(scope, id);
    const { api, network, storage, streaming } = props;
    const defaults = {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
    };
    const maxUploadBytes = String(props.maxUploadBytes ?? 50 * 1024 * 1024);
    const jobRetentionDays = String(props.jobRetentionDays ?? 30);
    const tenantClaim = props.tenantClaim ?? "tenant";

    this.uploadUrl = nodeFunction(this, "UploadUrl", {
      ...defaults,
      entry: "functions/upload-url/handler.ts",
      serviceName: "upload-url",
      description: "POST /uploads: creates a job and a presigned upload (POST form or PUT URL)",
      // Presigning and one DynamoDB write: tiny.
      memorySize: 512,
      timeout: Duration.seconds(10),
      // No reservation: the API stage throttle bounds it.
      environment: environmentOf("upload-url", {
        JOBS_TABLE: storage.jobsTable.tableName,
        UPLOAD_BUCKET: storage.uploadBucket.bucketName,
        ALLOWED_CONTENT_TYPES: (
          props.allowedContentTypes ?? ["application/pdf", "text/plain", "text/markdown", "text/html"]
        ).join(","),
        MAX_UPLOAD_BYTES: maxUploadBytes,
        UPLOAD_METHOD: props.uploadMethod ?? "PUT",
        UPLOAD_URL_TTL_SECONDS: String(props.uploadUrlTtlSeconds ?? 900),
        TENANT_CLAIM: tenantClaim,
        ...api.tokenVerification,
        JOB_RETENTION_DAYS: jobRetentionDays,
      }),
    });
    // Creates the job and its upload due date (one transaction of two Puts); signs the upload (a
    // presigned PUT/POST carries the signer's rights).
    storage.grantJobs(this.uploadUrl, "PutItem");
    storage.grantUploads(this.uploadUrl, "PresignUpload", "s3:PutObject");
    api.addRoutes("upload-url", this.uploadUrl);

    this.onUpload = nodeFunction(this, "OnUpload", {
      ...defaults,
      entry: "functions/on-upload/handler.ts",
      serviceName: "on-upload",
      description:
        "S3 ObjectCreated under uploads/: checks the object, marks the job UPLOADED, publishes documents.uploaded",
      // One ranged read + DynamoDB updates + one Kafka produce; the IAM-auth connect dominates.
      memorySize: 512,
      // Room to retry the produce through a broker failover (minutes) before S3's own retries.
      timeout: Duration.minutes(3),
      // No reservation: S3 invokes asynchronously and Lambda retries throttled events itself.
      ...network.kafkaClientPlacement,
      environment: environmentOf("on-upload", {
        JOBS_TABLE: storage.jobsTable.tableName,
        MAX_UPLOAD_BYTES: maxUploadBytes,
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_DOCUMENTS_UPLOADED: TOPICS.documentsUploaded,
        JOB_RETENTION_DAYS: jobRetentionDays,
      }),
    });
    // One ranged read of the object (its size and leading bytes), moves the job on (or fails
    // it), publishes the event.
    storage.grantJobs(this.onUpload, "GetItem", "UpdateItem");
    storage.grantUploads(this.onUpload, "ReadUpload", "s3:GetObject");
    storage.grantListUploads(this.onUpload);
    streaming.grantProduce(this.onUpload, [TOPICS.documentsUploaded]);
    // The start of the pipeline: S3 → on-upload.
    storage.uploadBucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(this.onUpload), {
      prefix: KEYS.uploads,
    });

    this.jobStatus = nodeFunction(this, "JobStatus", {
      ...defaults,
      entry: "functions/job-status/handler.ts",
      serviceName: "job-status",
      description: "GET /jobs/{id}: state, per-stage counts, timings, errors; GET /jobs: the tenant's jobs",
      memorySize: 256,
      timeout: Duration.seconds(10),
      // No reservation: the API stage throttle bounds it.
      environment: environmentOf("job-status", {
        JOBS_TABLE: storage.jobsTable.tableName,
        TENANT_CLAIM: tenantClaim,
        ...api.tokenVerification,
        STALL_AFTER_MINUTES: String(props.stallAfterMinutes ?? 10),
      }),
    });
    // Reads one item; lists a tenant's jobs from the per-tenant index.
    storage.grantJobs(this.jobStatus, "GetItem");
    storage.grantListTenantJobs(this.jobStatus);
    api.addRoutes("job-status", this.jobStatus);
  }
}
