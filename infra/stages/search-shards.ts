import { Duration } from "aws-cdk-lib";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import { environmentOf, type FunctionDefaults, grantStatement, nodeFunction } from "../lambda-defaults.ts";
import type { Storage } from "../storage.ts";

export interface SearchShardsStageProps extends FunctionDefaults {
  readonly storage: Storage;
  /** The native layer (faiss-node). */
  readonly nativeLayer: lambda.ILayerVersion;
  /**
   * Shard functions. Shard i of a collection always goes to function i mod this count, so each
   * function's warm environments keep the same segments: collections up to this many shards search
   * with every shard warm (count × `shardMaxChunks` chunks). 0: every collection is searched in the
   * search function itself.
   * @default 10
   */
  readonly count?: number;
  /**
   * A collection with more chunks is searched as shards of at most this many (whole segments, oldest
   * first), in parallel; one shard's cold first answer and memory are what one search function's would be.
   * @default 1000000
   */
  readonly shardMaxChunks?: number;
  /**
   * Memory of a shard function, MB (and its CPU share).
   * @default 3008
   */
  readonly memorySize?: number;
  /**
   * /tmp of a shard function, MiB, where its segments are cached whole across warm invocations.
   * @default 10240
   */
  readonly ephemeralStorageMiB?: number;
}

/**
 * Search past one container: identical shard functions, each searching the segments of one shard of a
 * large collection (BM25 with the collection-wide idf the search function sends, dense with exact
 * re-scoring) and returning its best hits with their chunks; the search function invokes them in
 * parallel (Lambda Invoke, `grantInvoke`) and merges. Nothing runs between searches.
 */
export class SearchShardsStage extends Construct {
  readonly functions: nodejs.NodejsFunction[];
  /** What the search function reads (SEARCH_SHARD_FUNCTIONS, SHARD_MAX_CHUNKS). */
  readonly functionNames: string | undefined;
  readonly shardMaxChunks: string;

  constructor(scope: Construct, id: string, props: SearchShardsStageProps) {
    super(scope, id);
    const { storage } = props;
    const count = props.count ?? 10;
    this.shardMaxChunks = String(props.shardMaxChunks ?? 1_000_000);
    this.functions = Array.from({ length: count }, (_, shard) => {
      const fn = nodeFunction(this, `Shard${shard}`, {
        stage: props.stage,
        logRetentionDays: props.logRetentionDays,
        removalPolicy: props.removalPolicy,
        entry: "functions/search-shard/handler.ts",
        serviceName: "search-shard",
        description: `Searches shard ${shard} (mod ${count}) of large collections for the search function`,
        memorySize: props.memorySize ?? 3008,
        // Within the search function's own 29 s.
        timeout: Duration.seconds(28),
        layers: [props.nativeLayer],
        usesNativeLayer: true,
        ephemeralStorageMiB: props.ephemeralStorageMiB ?? 10_240,
        environment: environmentOf("search-shard", {
          INDEX_BUCKET: storage.indexBucket.bucketName,
          SEGMENT_CACHE_DIR: "/tmp/segments",
        }),
      });
      // Reads segments, nothing else.
      storage.grantSegments(fn, "ReadSegments", "s3:GetObject");
      return fn;
    });
    this.functionNames = count > 0 ? this.functions.map((fn) => fn.functionName).join(",") : undefined;
  }

  /** Lets the search function invoke the shard functions (the functions themselves, no versions). */
  grantInvoke(grantee: lambda.IFunction): void {
    if (this.functions.length === 0) return;
    grantStatement({
      grantee,
      sid: "InvokeSearchShards",
      actions: ["lambda:InvokeFunction"],
      resourceArns: this.functions.map((fn) => fn.functionArn),
    });
  }
}
