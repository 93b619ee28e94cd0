import { Duration } from "aws-cdk-lib";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import { type KafkaConsumerProps, kafkaEventSource } from "../kafka-consumer.ts";
import { environmentOf, type FunctionDefaults, nodeFunction } from "../lambda-defaults.ts";
import { embeddingEnvironment, grantCopyModels, type ModelProps, modelEnvironment } from "../models.ts";
import type { Network } from "../network.ts";
import type { Storage } from "../storage.ts";
import { TOPICS } from "../streaming.ts";

export interface SplitStageProps extends FunctionDefaults, KafkaConsumerProps, ModelProps {
  readonly network: Network;
  readonly storage: Storage;
  /**
   * Memory of the function, MB (PDF extraction holds the file, its text and pdf.js state).
   * @default 2048
   */
  readonly memorySize?: number;
  /**
   * Executions reserved for the stage (one per partition of documents.uploaded guarantees them).
   * @default - no reservation
   */
  readonly reservedConcurrency?: number;
  /**
   * Documents per Kafka batch.
   * @default 5
   */
  readonly batchSize?: number;
  /**
   * Chunks per message on chunks.to-embed (one embed work item).
   * @default 16
   */
  readonly chunksPerGroup?: number;
  /**
   * Days a finished job stays readable before its TTL removes it.
   * @default 30
   */
  readonly jobRetentionDays?: number;
}

/**
 * documents.uploaded → the split function extracts the text, chunks it and publishes groups of
 * chunks to chunks.to-embed (the fan-out).
 */
export class SplitStage extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly eventSource: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: SplitStageProps) {
    super(scope, id);
    const { network, storage, streaming } = props;
    this.function = nodeFunction(this, "Function", {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      entry: "functions/split/handler.ts",
      serviceName: "split",
      description: "documents.uploaded → extracts text, chunks it, publishes chunk groups to chunks.to-embed",
      memorySize: props.memorySize ?? 2048,
      // A large PDF takes minutes; a batch holds batchSize documents.
      timeout: Duration.minutes(10),
      // One invocation per partition at most: reserving the partition count guarantees them.
      reservedConcurrentExecutions: props.reservedConcurrency,
      ...network.kafkaClientPlacement,
      // Chunk sizes are counted in the embedder's tokens: the tokenizer comes from the layer.
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      environment: environmentOf("split", {
        JOBS_TABLE: storage.jobsTable.tableName,
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_CHUNKS_TO_EMBED: TOPICS.chunksToEmbed,
        CHUNKS_PER_GROUP: String(props.chunksPerGroup ?? 16),
        ...modelEnvironment(props.modelLocation),
        EMBEDDING_MODEL: embeddingEnvironment(props).EMBEDDING_MODEL,
        JOB_RETENTION_DAYS: String(props.jobRetentionDays ?? 30),
      }),
    });
    // Reads the document, moves the job on with its chunk total.
    storage.grantJobs(this.function, "GetItem", "BatchGetItem", "UpdateItem");
    storage.grantUploads(this.function, "ReadUpload", "s3:GetObject");
    streaming.grantProduce(this.function, [TOPICS.chunksToEmbed]);
    // Models on S3 are copied to /tmp during init: read and list the prefix.
    grantCopyModels(this, this.function, props.modelLocation);

    // A document per record and each may take minutes: small batches so one slow PDF holds up few
    // others; bisect isolates a document that fails every time (chunk ids are deterministic, so a
    // re-split of its neighbours publishes the same chunks, which downstream de-duplicates).
    this.eventSource = kafkaEventSource(this, "Events", this.function, {
      ...props,
      consumer: "split",
      topic: TOPICS.documentsUploaded,
      batchSize: props.batchSize ?? 5,
      maxBatchingWindow: Duration.seconds(1),
      bisectBatchOnError: true,
    });
  }
}
