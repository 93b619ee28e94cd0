import { type CfnElement, Duration, type RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import { nodeFunction } from "./lambda-defaults.ts";
import { KEYS, type Storage } from "./storage.ts";

export interface CompactionProps {
  readonly storage: Pick<Storage, "indexBucket" | "jobsTable">;
  readonly nativeLayer: lambda.ILayerVersion;
  /** The index function: it hands collections to compaction (COMPACT_FUNCTION) and may invoke it. */
  readonly indexFunction: lambda.Function;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  /**
   * Memory of the compaction function: a merge holds the merged segment's vectors, texts and postings.
   * @default 2048
   */
  readonly memoryMb?: number;
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
   * Merged segments with at least this many chunks get an IVF-PQ dense index.
   * @default 4096
   */
  readonly annMinChunks?: number;
}

/**
 * Compaction, apart from ingestion: the index function invokes this function asynchronously after a
 * batch that leaves something to merge; it merges neighbouring segments tier by tier (size-tiered, bounded
 * by `maxSegmentChunks`), one holder per collection at a time (a lease in the jobs table), and invokes
 * itself again if time runs short. Its failures never fail an ingestion batch.
 */
export class Compaction extends Construct {
  readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: CompactionProps) {
    super(scope, id);
    const { storage, indexFunction } = props;
    const mergeFactor = String(props.mergeFactor ?? 4);
    const maxSegmentChunks = String(props.maxSegmentChunks ?? 262_144);
    this.function = nodeFunction(this, "Compact", {
      entry: "functions/compact/handler.ts",
      serviceName: "compact",
      description: "Merges a collection's index segments (size-tiered, bounded), apart from ingestion",
      memorySize: props.memoryMb ?? 2048,
      // Merges run until 5 minutes are left, so each started merge has time to finish.
      timeout: Duration.minutes(15),
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      environment: {
        JOBS_TABLE: storage.jobsTable.tableName,
        INDEX_BUCKET: storage.indexBucket.bucketName,
        MERGE_FACTOR: mergeFactor,
        MAX_SEGMENT_CHUNKS: maxSegmentChunks,
        ANN_MIN_CHUNKS: String(props.annMinChunks ?? 4096),
      },
    });
    const fn = this.function;
    // Manifests and the compaction lease (GetItem, UpdateItem; PutItem/DeleteItem for the lease).
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "Manifests",
        actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
        resources: [storage.jobsTable.tableArn],
      }),
    );
    const indexObjects = storage.indexBucket.arnForObjects(`${KEYS.index}*`);
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "Segments",
        actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        resources: [indexObjects],
      }),
    );
    // Invoking itself for the rest of a long compaction: a policy of its own, so the function does not
    // depend on a statement naming its own ARN.
    fn.role?.attachInlinePolicy(
      new iam.Policy(this, "InvokeSelf", {
        statements: [new iam.PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [fn.functionArn] })],
      }),
    );
    indexFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "InvokeCompaction",
        actions: ["lambda:InvokeFunction"],
        resources: [fn.functionArn],
      }),
    );
    indexFunction.addEnvironment("COMPACT_FUNCTION", fn.functionName);
    indexFunction.addEnvironment("MERGE_FACTOR", mergeFactor);
    indexFunction.addEnvironment("MAX_SEGMENT_CHUNKS", maxSegmentChunks);

    const bucketId = Stack.of(this).getLogicalId(storage.indexBucket.node.defaultChild as CfnElement);
    if (fn.role) {
      Validations.of(fn.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${KEYS.index}*]`,
        reason:
          "Index objects are index/<tenant>/<collection>/segments/<id>.seg, created at run time: compaction reads, writes and deletes objects under the index/ prefix only.",
      });
    }
  }
}
