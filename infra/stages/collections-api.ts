import { Duration } from "aws-cdk-lib";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import type { Api } from "../api.ts";
import { environmentOf, type FunctionDefaults, nodeFunction } from "../lambda-defaults.ts";
import { embeddingEnvironment, grantReadModels, type ModelProps, modelEnvironment } from "../models.ts";
import type { Network } from "../network.ts";
import type { Storage } from "../storage.ts";
import { type Streaming, TOPICS } from "../streaming.ts";

export interface CollectionsApiProps extends FunctionDefaults, ModelProps {
  readonly api: Api;
  readonly network: Network;
  readonly storage: Storage;
  readonly streaming: Streaming;
  /**
   * Memory of the function, MB: the evaluation gate runs both models' queries over both indexes.
   * @default 3008
   */
  readonly memorySize?: number;
  /**
   * The JWT claim that names the tenant.
   * @default "tenant"
   */
  readonly tenantClaim?: string;
  /**
   * Days a finished job (a migration's) stays readable before its TTL removes it.
   * @default 30
   */
  readonly jobRetentionDays?: number;
}

/**
 * GET /collections/{name} and a collection's migration to another embedding model: start (the
 * re-embedding requests go to chunks.embedded), progress and evaluation gate, cut-over,
 * roll-back, dropping an index.
 */
export class CollectionsApi extends Construct {
  readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: CollectionsApiProps) {
    super(scope, id);
    const { api, network, storage, streaming } = props;
    this.function = nodeFunction(this, "Function", {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      entry: "functions/collections/handler.ts",
      serviceName: "collections",
      description: "A collection's indexes; migration to another embedding model, cut-over, roll-back",
      memorySize: props.memorySize ?? 3008,
      // API Gateway gives up after 30 s.
      timeout: Duration.seconds(29),
      ...network.kafkaClientPlacement,
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      environment: environmentOf("collections", {
        JOBS_TABLE: storage.jobsTable.tableName,
        INDEX_BUCKET: storage.indexBucket.bucketName,
        TENANT_CLAIM: props.tenantClaim ?? "tenant",
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_CHUNKS_EMBEDDED: TOPICS.chunksEmbedded,
        ...embeddingEnvironment(props),
        ...modelEnvironment(props.modelLocation),
        JOB_RETENTION_DAYS: String(props.jobRetentionDays ?? 30),
      }),
    });
    // The collection's items and the migration's job; the cut-over is a conditional transaction.
    storage.grantJobs(this.function, "GetItem", "PutItem", "UpdateItem", "Query", "ConditionCheckItem");
    // Reads segments for the evaluation gate, deletes a dropped index's.
    storage.grantSegments(this.function, "CollectionSegments", "s3:GetObject", "s3:DeleteObject");
    streaming.grantProduce(this.function, [TOPICS.chunksEmbedded]);
    grantReadModels(this, this.function, props.modelLocation);
    api.addRoutes("collections", this.function);
  }
}
