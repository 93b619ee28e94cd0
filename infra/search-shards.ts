import { type CfnElement, Duration, type RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import { nodeFunction } from "./lambda-defaults.ts";
import { KEYS, type Storage } from "./storage.ts";

export interface SearchShardsProps {
  readonly storage: Pick<Storage, "indexBucket">;
  readonly nativeLayer: lambda.ILayerVersion;
  /** The search function: it fans a large collection out to these (SEARCH_SHARD_FUNCTIONS) and merges. */
  readonly searchFunction: lambda.Function;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  /**
   * Shard functions. Shard i of a collection always goes to function i mod this count, so each
   * function's warm environments keep the same segments: collections up to this many shards search
   * with every shard warm (shardFunctions × shardMaxChunks chunks). 0 searches every collection in
   * the search function itself.
   * @default 10
   */
  readonly shardFunctions?: number;
  /**
   * A collection with more chunks is searched as shards of at most this many (whole segments), in
   * parallel; one shard's cold first answer and memory are what one search function's would be.
   * @default 1000000
   */
  readonly shardMaxChunks?: number;
  /**
   * Memory of a shard function (and its CPU share).
   * @default 3008
   */
  readonly memoryMb?: number;
  /**
   * /tmp of a shard function, where its segments are cached whole.
   * @default 10240
   */
  readonly ephemeralStorageMiB?: number;
}

/**
 * Search past one container: identical shard functions, each searching the segments of one shard of a
 * large collection (BM25 with the collection-wide idf the search function sends, dense with exact
 * re-scoring) and returning its best hits with their chunks; the search function invokes them in parallel
 * (Lambda Invoke) and merges. Nothing runs between searches.
 */
export class SearchShards extends Construct {
  readonly functions: nodejs.NodejsFunction[];

  constructor(scope: Construct, id: string, props: SearchShardsProps) {
    super(scope, id);
    const { storage, searchFunction } = props;
    const count = props.shardFunctions ?? 10;
    const bucketId = Stack.of(this).getLogicalId(storage.indexBucket.node.defaultChild as CfnElement);
    this.functions = Array.from({ length: count }, (_, shard) => {
      const fn = nodeFunction(this, `Shard${shard}`, {
        entry: "functions/search-shard/handler.ts",
        serviceName: "search-shard",
        description: `Searches shard ${shard} (mod ${count}) of large collections for the search function`,
        memorySize: props.memoryMb ?? 3008,
        // Within the search function's own 29 s.
        timeout: Duration.seconds(28),
        layers: [props.nativeLayer],
        usesNativeLayer: true,
        ephemeralStorageMiB: props.ephemeralStorageMiB ?? 10_240,
        logRetentionDays: props.logRetentionDays,
        removalPolicy: props.removalPolicy,
        environment: { INDEX_BUCKET: storage.indexBucket.bucketName },
      });
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "ReadSegments",
          actions: ["s3:GetObject"],
          resources: [storage.indexBucket.arnForObjects(`${KEYS.index}*`)],
        }),
      );
      if (fn.role) {
        Validations.of(fn.role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${KEYS.index}*]`,
          reason:
            "Index objects are index/<tenant>/<collection>/segments/<id>.seg: read-only, under the index/ prefix only.",
        });
      }
      return fn;
    });
    if (count > 0) {
      // The functions themselves (not their versions or aliases).
      searchFunction.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "InvokeSearchShards",
          actions: ["lambda:InvokeFunction"],
          resources: this.functions.map((fn) => fn.functionArn),
        }),
      );
    }
    if (count > 0) {
      searchFunction.addEnvironment("SEARCH_SHARD_FUNCTIONS", this.functions.map((fn) => fn.functionName).join(","));
    }
    searchFunction.addEnvironment("SHARD_MAX_CHUNKS", String(props.shardMaxChunks ?? 1_000_000));
  }
}
