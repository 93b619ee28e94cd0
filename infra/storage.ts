import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { JOBS_TABLE } from "../shared/adapters/jobs-table.ts";
import type { DataDistillerConfig } from "./config.ts";

/** Object key layout, scoped per tenant (the functions build keys with the same prefixes). */
export const KEYS = {
  /** `uploads/<tenant>/<documentId>/<filename>` */
  uploads: "uploads/",
  /** `index/<tenant>/<collection>/…` (segments; the manifest lives in the jobs table). */
  index: "index/",
} as const;

/** Name of the S3 request-metrics filter on the dead-letter bucket (the alarm reads its PutRequests). */
export const DEAD_LETTER_METRICS_ID = "EntireBucket";

/**
 * Buckets and the jobs table.
 *
 * Every bucket: public access blocked, SSE-S3 encryption, TLS-only bucket policy (enforceSSL),
 * server access logs to a dedicated log bucket, incomplete multipart uploads aborted after a day.
 * SSE-S3 rather than a customer-managed KMS key: it needs no key policy for the functions, the
 * presigned browser uploads or Lambda's on-failure writer, and costs nothing per request.
 */
export class Storage extends Construct {
  readonly uploadBucket: s3.Bucket;
  readonly indexBucket: s3.Bucket;
  readonly deadLetterBucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket;
  readonly jobsTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: { config: DataDistillerConfig; removalPolicy: RemovalPolicy }) {
    super(scope, id);
    const { config, removalPolicy } = props;
    const destroy = removalPolicy === RemovalPolicy.DESTROY;
    const common: s3.BucketProps = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy,
      autoDeleteObjects: destroy,
    };
    const abortIncompleteUploads: s3.LifecycleRule = {
      id: "abort-incomplete-multipart-uploads",
      abortIncompleteMultipartUploadAfter: Duration.days(1),
    };

    this.accessLogBucket = new s3.Bucket(this, "AccessLogs", {
      ...common,
      // S3 log delivery writes with the bucket owner's ownership under a bucket policy (CDK adds it).
      lifecycleRules: [{ id: "expire-access-logs", expiration: Duration.days(90) }, abortIncompleteUploads],
    });
    const logged = (prefix: string): s3.BucketProps => ({
      ...common,
      serverAccessLogsBucket: this.accessLogBucket,
      serverAccessLogsPrefix: `${prefix}/`,
    });

    this.uploadBucket = new s3.Bucket(this, "Uploads", {
      ...logged("uploads"),
      // Browsers PUT (presigned URL) or POST (presigned POST form) the file straight to S3.
      cors: [
        {
          allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.POST],
          allowedOrigins: config.corsAllowedOrigins,
          allowedHeaders: ["*"],
          exposedHeaders: ["ETag"],
          maxAge: 3000,
        },
      ],
      lifecycleRules: [
        abortIncompleteUploads,
        {
          // Raw documents are only needed until they are split; the index keeps the chunks.
          id: "expire-raw-uploads",
          prefix: KEYS.uploads,
          expiration: Duration.days(config.uploadRetentionDays),
        },
      ],
    });

    this.indexBucket = new s3.Bucket(this, "Index", {
      ...logged("index"),
      // Segments are immutable and compaction deletes merged ones: no expiry here.
      lifecycleRules: [abortIncompleteUploads],
    });

    this.deadLetterBucket = new s3.Bucket(this, "DeadLetters", {
      ...logged("dead-letters"),
      lifecycleRules: [
        abortIncompleteUploads,
        { id: "expire-dead-letters", expiration: Duration.days(config.deadLetterRetentionDays) },
      ],
      // Request metrics give a PutRequests metric: any put here is a batch that failed for good.
      metrics: [{ id: DEAD_LETTER_METRICS_ID }],
    });

    // Single-table design (shared/adapters/jobs-table.ts): jobs, per-batch markers, per-tenant
    // listings and the collection manifests (guarded by a version attribute with conditional
    // writes). One table lets the index stage commit "batch marker + job counters + manifest
    // version" in one DynamoDB transaction, and it is one thing to back up (PITR) and to run locally.
    const { partitionKey, sortKey, tenantJobsIndex, timeToLiveAttribute } = JOBS_TABLE;
    const string = dynamodb.AttributeType.STRING;
    this.jobsTable = new dynamodb.Table(this, "Jobs", {
      partitionKey: { name: partitionKey, type: string },
      sortKey: { name: sortKey, type: string },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute,
      // Encrypted at rest with the AWS-owned key (DynamoDB's default): no KMS charges or key policy.
      deletionProtection: !destroy,
      removalPolicy,
    });
    this.jobsTable.addGlobalSecondaryIndex({
      indexName: tenantJobsIndex.indexName,
      partitionKey: { name: tenantJobsIndex.partitionKey, type: string },
      sortKey: { name: tenantJobsIndex.sortKey, type: string },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
}
