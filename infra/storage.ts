import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import type * as iam from "aws-cdk-lib/aws-iam";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { JOBS_TABLE } from "../shared/adapters/jobs-table.ts";
import { grantStatement } from "./lambda-defaults.ts";

/** Object key layout, scoped per tenant (the functions build keys with the same prefixes). */
export const KEYS = {
  /** `uploads/<tenant>/<documentId>/<filename>` */
  uploads: "uploads/",
  /** `index/<tenant>/<collection>/…` (segments; the manifest lives in the jobs table). */
  index: "index/",
} as const;

/**
 * Key layout of the dead-letter bucket (shared/stages/dead-letters.ts): Lambda writes failed batches
 * under aws/lambda/<mapping id>/…; a replayed one moves under redriven/ so it is replayed once.
 */
export const DEAD_LETTER_KEYS = { failed: "aws/lambda/", redriven: "redriven/" } as const;

/** What the functions do with the jobs table (DynamoDB actions; TransactWriteItems is checked per inner action). */
export type JobsTableAction =
  | "GetItem"
  | "BatchGetItem"
  | "BatchWriteItem"
  | "PutItem"
  | "UpdateItem"
  | "DeleteItem"
  | "Query"
  | "ConditionCheckItem";

export interface StorageProps {
  /**
   * Browser origins that may PUT/POST to the upload bucket with a presigned URL or form.
   * @default ["*"]
   */
  readonly corsAllowedOrigins?: string[];
  /**
   * Days after which raw uploads are deleted (the index keeps the extracted chunks).
   * @default 30
   */
  readonly uploadRetentionDays?: number;
  /**
   * Days after which dead-lettered batches are deleted.
   * @default 30
   */
  readonly deadLetterRetentionDays?: number;
  /**
   * RETAIN keeps the buckets and the table (with deletion protection) when the stack is deleted;
   * DESTROY empties and deletes them.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

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

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
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
          allowedOrigins: props.corsAllowedOrigins ?? ["*"],
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
          expiration: Duration.days(props.uploadRetentionDays ?? 30),
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
        { id: "expire-dead-letters", expiration: Duration.days(props.deadLetterRetentionDays ?? 30) },
      ],
      // Request metrics give a PutRequests metric: any put here is a batch that failed for good.
      metrics: [{ id: DEAD_LETTER_METRICS_ID }],
    });

    // Single-table design (shared/adapters/jobs-table.ts): jobs, per-batch markers, per-tenant
    // listings and the collection manifests (guarded by a version attribute with conditional
    // writes). One table lets the index stage commit "batch marker + job counters + manifest
    // version" in one DynamoDB transaction, and it is one thing to back up (PITR) and to run locally.
    const { partitionKey, sortKey, tenantJobsIndex, uploadChecksIndex, timeToLiveAttribute } = JOBS_TABLE;
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
    this.jobsTable.addGlobalSecondaryIndex({
      indexName: uploadChecksIndex.indexName,
      partitionKey: { name: uploadChecksIndex.partitionKey, type: string },
      sortKey: { name: uploadChecksIndex.sortKey, type: string },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
  }

  /** Lets a function use the jobs table items (one statement, JobsTable). */
  grantJobs(grantee: iam.IGrantable, ...actions: JobsTableAction[]): iam.Grant {
    return grantStatement({
      grantee,
      sid: "JobsTable",
      actions: actions.map((action) => `dynamodb:${action}`),
      resourceArns: [this.jobsTable.tableArn],
    });
  }

  /** Lets a function list a tenant's jobs from the tenant index (Query on that index only). */
  grantListTenantJobs(grantee: iam.IGrantable): iam.Grant {
    return grantStatement({
      grantee,
      sid: "ListTenantJobs",
      actions: ["dynamodb:Query"],
      resourceArns: [`${this.jobsTable.tableArn}/index/${JOBS_TABLE.tenantJobsIndex.indexName}`],
    });
  }

  /** Lets a function find the jobs whose upload check is due (Query on the upload-check index only). */
  grantDueUploads(grantee: iam.IGrantable): iam.Grant {
    return grantStatement({
      grantee,
      sid: "DueUploads",
      actions: ["dynamodb:Query"],
      resourceArns: [`${this.jobsTable.tableArn}/index/${JOBS_TABLE.uploadChecksIndex.indexName}`],
    });
  }

  /** Object actions on the upload bucket's uploads/ prefix. */
  grantUploads(grantee: iam.IGrantable, sid: string, ...actions: string[]): iam.Grant {
    return grantStatement({
      grantee,
      sid,
      actions,
      resourceArns: [this.uploadBucket.arnForObjects(`${KEYS.uploads}*`)],
    });
  }

  /**
   * ListBucket on the upload bucket, limited to the uploads/ prefix: a read of a key that is gone
   * then answers 404 (ignored), not 403 (retried).
   */
  grantListUploads(grantee: iam.IGrantable): iam.Grant {
    return grantStatement({
      grantee,
      sid: "ListUploads",
      actions: ["s3:ListBucket"],
      resourceArns: [this.uploadBucket.bucketArn],
      conditions: { StringLike: { "s3:prefix": [`${KEYS.uploads}*`] } },
    });
  }

  /** Object actions on the index bucket's index/ prefix (segments). */
  grantSegments(grantee: iam.IGrantable, sid: string, ...actions: string[]): iam.Grant {
    return grantStatement({ grantee, sid, actions, resourceArns: [this.indexBucket.arnForObjects(`${KEYS.index}*`)] });
  }

  /** Object actions on the dead-letter bucket, under the failed batches' or the replayed ones' prefix. */
  grantDeadLetters(
    grantee: iam.IGrantable,
    sid: string,
    keys: keyof typeof DEAD_LETTER_KEYS,
    ...actions: string[]
  ): iam.Grant {
    return grantStatement({
      grantee,
      sid,
      actions,
      resourceArns: [this.deadLetterBucket.arnForObjects(`${DEAD_LETTER_KEYS[keys]}*`)],
    });
  }

  /** ListBucket on the whole dead-letter bucket (dead letters are found by listing from the root). */
  grantListDeadLetters(grantee: iam.IGrantable): iam.Grant {
    return grantStatement({
      grantee,
      sid: "ListDeadLetters",
      actions: ["s3:ListBucket"],
      resourceArns: [this.deadLetterBucket.bucketArn],
    });
  }
}
