import { Duration } from "aws-cdk-lib";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import type { Api } from "../api.ts";
import { environmentOf, type FunctionDefaults, grantStatement, nodeFunction } from "../lambda-defaults.ts";
import { embeddingEnvironment, grantCopyModels, type ModelProps, modelEnvironment } from "../models.ts";
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
 *
 * Two functions, like the dead-letter API: the API function is outside the VPC, so it reaches the
 * token issuer's keys; it invokes the fan-out function, in the VPC, which reaches Kafka.
 */
export class CollectionsApi extends Construct {
  readonly function: nodejs.NodejsFunction;
  /** Publishes a migration's re-embed requests to chunks.embedded (invoked by the API function). */
  readonly fanOut: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: CollectionsApiProps) {
    super(scope, id);
    const { api, network, storage, streaming } = props;
    this.fanOut = nodeFunction(this, "FanOut", {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      entry: "functions/migration-fanout/handler.ts",
      serviceName: "migration-fanout",
      description: "Publishes a migration's re-embed requests to chunks.embedded (invoked by the collections API)",
      // One Kafka produce of up to 1,000 small messages.
      memorySize: 256,
      timeout: Duration.seconds(20),
      // In the VPC like the other Kafka producers: MSK is reachable only from the private subnets.
      ...network.kafkaClientPlacement,
      environment: environmentOf("migration-fanout", {
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_CHUNKS_EMBEDDED: TOPICS.chunksEmbedded,
      }),
    });
    streaming.grantProduce(this.fanOut, [TOPICS.chunksEmbedded]);

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
      // Not in the VPC: it verifies bearer tokens against the issuer's keys (on the internet).
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      environment: environmentOf("collections", {
        JOBS_TABLE: storage.jobsTable.tableName,
        INDEX_BUCKET: storage.indexBucket.bucketName,
        TENANT_CLAIM: props.tenantClaim ?? "tenant",
        ...api.tokenVerification,
        MIGRATION_FANOUT_FUNCTION: this.fanOut.functionName,
        ...embeddingEnvironment(props),
        ...modelEnvironment(props.modelLocation),
        JOB_RETENTION_DAYS: String(props.jobRetentionDays ?? 30),
      }),
    });
    // The collection's items and the migration's job; the cut-over is a conditional transaction.
    storage.grantJobs(this.function, "GetItem", "PutItem", "UpdateItem", "Query", "ConditionCheckItem");
    // Reads segments for the evaluation gate, deletes a dropped index's.
    storage.grantSegments(this.function, "CollectionSegments", "s3:GetObject", "s3:DeleteObject");
    grantCopyModels(this, this.function, props.modelLocation);
    grantStatement({
      grantee: this.function,
      sid: "InvokeFanOut",
      actions: ["lambda:InvokeFunction"],
      resourceArns: [this.fanOut.functionArn],
    });
    api.addRoutes("collections", this.function);
  }
}
