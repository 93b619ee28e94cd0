import { Duration } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import { environmentOf, type FunctionDefaults, grantStatement, nodeFunction } from "../lambda-defaults.ts";
import type { Storage } from "../storage.ts";

export interface CompactionStageProps extends FunctionDefaults {
  readonly storage: Storage;
  /** The native layer (faiss-node trains the merged segments' IVF-PQ indexes). */
  readonly nativeLayer: lambda.ILayerVersion;
  /**
   * Memory of the compaction function, MB: a merge holds the merged segment's vectors, texts and postings
   * (bounded by `maxSegmentChunks`, not by the collection).
   * @default 2048
   */
  readonly memorySize?: number;
  /**
   * Segments merged at once (and the size ratio between tiers).
   * @default 4
   */
  readonly mergeFactor?: number;
  /**
   * No merge produces a segment with more chunks than this (bounds each merge's memory and time).
   * @default 262144
   */
  readonly maxSegmentChunks?: number;
  /**
   * Merged segments with at least this many chunks get an IVF-PQ dense index (re-scored exactly).
   * @default 4096
   */
  readonly annMinChunks?: number;
}

/**
 * Compaction, apart from ingestion: the index function invokes this function asynchronously after a
 * batch that leaves something to merge (`grantRequest`); it merges neighbouring segments tier by tier
 * (size-tiered, bounded by `maxSegmentChunks`), one holder per collection at a time (a lease in the jobs
 * table), and invokes itself again when time runs short. Its failures never fail an ingestion batch.
 */
export class CompactionStage extends Construct {
  readonly function: nodejs.NodejsFunction;
  /** What the index function passes on to its handler (MERGE_FACTOR, MAX_SEGMENT_CHUNKS: when to ask). */
  readonly mergeFactor: string;
  readonly maxSegmentChunks: string;

  constructor(scope: Construct, id: string, props: CompactionStageProps) {
    super(scope, id);
    const { storage } = props;
    this.mergeFactor = String(props.mergeFactor ?? 4);
    this.maxSegmentChunks = String(props.maxSegmentChunks ?? 262_144);
    const fn = nodeFunction(this, "Function", {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      entry: "functions/compact/handler.ts",
      serviceName: "compact",
      description: "Merges a collection's index segments (size-tiered, bounded), apart from ingestion",
      memorySize: props.memorySize ?? 2048,
      // Merges start only while 5 minutes are left, so each started merge has time to finish.
      timeout: Duration.minutes(15),
      // One run per collection at a time (the lease); no reservation needed.
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      environment: environmentOf("compact", {
        JOBS_TABLE: storage.jobsTable.tableName,
        INDEX_BUCKET: storage.indexBucket.bucketName,
        MERGE_FACTOR: this.mergeFactor,
        MAX_SEGMENT_CHUNKS: this.maxSegmentChunks,
        ANN_MIN_CHUNKS: String(props.annMinChunks ?? 4096),
      }),
    });
    this.function = fn;
    // Manifests, and the compaction lease (Put to take it, Delete to give it back).
    storage.grantJobs(fn, "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query");
    // Reads the segments it merges, writes the merged one, deletes the replaced ones once retired.
    storage.grantSegments(fn, "Segments", "s3:GetObject", "s3:PutObject", "s3:DeleteObject");
    // The rest of a long compaction: it invokes itself. A policy of its own, so the function (which
    // depends on its role's default policy) does not depend on a statement naming its own ARN.
    fn.role?.attachInlinePolicy(
      new iam.Policy(this, "InvokeSelf", {
        statements: [new iam.PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [fn.functionArn] })],
      }),
    );
  }

  /** Lets the index function hand collections to compaction (asynchronous Invoke). */
  grantRequest(grantee: lambda.IFunction): void {
    grantStatement({
      grantee,
      sid: "InvokeCompaction",
      actions: ["lambda:InvokeFunction"],
      resourceArns: [this.function.functionArn],
    });
  }
}
