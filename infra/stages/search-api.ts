import { Duration } from "aws-cdk-lib";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import type { Api } from "../api.ts";
import { environmentOf, type FunctionDefaults, nodeFunction } from "../lambda-defaults.ts";
import {
  embeddingEnvironment,
  grantCopyModels,
  grantReadReranker,
  type ModelProps,
  modelEnvironment,
} from "../models.ts";
import type { Storage } from "../storage.ts";
import type { SearchShardsStage } from "./search-shards.ts";

export interface SearchApiProps extends FunctionDefaults, ModelProps {
  readonly api: Api;
  readonly storage: Storage;
  /**
   * Memory of the search function, MB: it holds cached segments and two models; more memory also
   * means more CPU for reranking.
   * @default 3008
   */
  readonly memorySize?: number;
  /**
   * The JWT claim that names the tenant.
   * @default "tenant"
   */
  readonly tenantClaim?: string;
  /**
   * Where the cross-encoder comes from: "models" (`<models>/reranker`, beside the embedder) or its
   * own S3 prefix "s3://bucket/prefix", copied to /tmp on a cold start.
   * @default "models"
   */
  readonly rerankerLocation?: string;
  /**
   * /tmp of the search function, MiB, where segments are cached whole across warm invocations.
   * @default 2048
   */
  readonly ephemeralStorageMiB?: number;
  /**
   * The shard functions a large collection is fanned out to.
   * @default - every collection is searched in the search function itself
   */
  readonly shards?: SearchShardsStage;
}

/**
 * The search side of the API: POST /search (hybrid retrieval, fusion, rerank over the tenant's
 * segments) and DELETE /documents/{id} (tombstones a document in its collection's manifest).
 */
export class SearchApi extends Construct {
  readonly search: nodejs.NodejsFunction;
  readonly deleteDocument: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: SearchApiProps) {
    super(scope, id);
    const { api, storage } = props;
    const defaults = {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
    };
    const tenantClaim = props.tenantClaim ?? "tenant";
    const rerankerLocation = props.rerankerLocation ?? "models";
    const rerankerFromS3 = rerankerLocation.startsWith("s3://");

    this.search = nodeFunction(this, "Search", {
      ...defaults,
      entry: "functions/search/handler.ts",
      serviceName: "search",
      description: "POST /search: BM25 + dense retrieval, RRF fusion, cross-encoder rerank",
      memorySize: props.memorySize ?? 3008,
      // API Gateway gives up after 30 s.
      timeout: Duration.seconds(29),
      // No reservation: the API stage throttle bounds it, and idle reservations would cost capacity.
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      // Room in /tmp for cached segments across warm invocations.
      ephemeralStorageMiB: props.ephemeralStorageMiB ?? 2048,
      environment: environmentOf("search", {
        JOBS_TABLE: storage.jobsTable.tableName,
        INDEX_BUCKET: storage.indexBucket.bucketName,
        TENANT_CLAIM: tenantClaim,
        ...api.tokenVerification,
        ...embeddingEnvironment(props),
        ...modelEnvironment(props.modelLocation),
        ...(rerankerFromS3 ? { RERANKER_S3_URI: rerankerLocation } : {}),
        SEGMENT_CACHE_DIR: "/tmp/segments",
        ...(props.shards?.functionNames ? { SEARCH_SHARD_FUNCTIONS: props.shards.functionNames } : {}),
        SHARD_MAX_CHUNKS: props.shards?.shardMaxChunks ?? "1000000",
      }),
    });
    props.shards?.grantInvoke(this.search);
    // Reads manifests (a collection's items: Query) and segments, nothing else.
    storage.grantJobs(this.search, "GetItem", "Query");
    storage.grantSegments(this.search, "ReadSegments", "s3:GetObject");
    // Models on S3 are copied to /tmp during init: read and list the prefix.
    grantCopyModels(this, this.search, props.modelLocation);
    if (rerankerFromS3) grantReadReranker(this, this.search, rerankerLocation);
    api.addRoutes("search", this.search);

    this.deleteDocument = nodeFunction(this, "DeleteDocument", {
      ...defaults,
      entry: "functions/delete-document/handler.ts",
      serviceName: "delete-document",
      description: "DELETE /documents/{id}: tombstones the document's live revision in its collection manifest",
      memorySize: 256,
      timeout: Duration.seconds(10),
      // No reservation: the API stage throttle bounds it.
      environment: environmentOf("delete-document", {
        JOBS_TABLE: storage.jobsTable.tableName,
        TENANT_CLAIM: tenantClaim,
        ...api.tokenVerification,
      }),
    });
    // Finds the live revision, tombstones it in every index's manifest (created if missing).
    storage.grantJobs(this.deleteDocument, "GetItem", "PutItem", "UpdateItem", "Query");
    api.addRoutes("delete-document", this.deleteDocument);
  }
}
