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

export interface EmbedStageProps extends FunctionDefaults, KafkaConsumerProps, ModelProps {
  readonly network: Network;
  readonly storage: Storage;
  /**
   * Memory of the function, MB: Lambda allots vCPU in proportion (4 GB ≈ 2.3 vCPU for
   * onnxruntime's intra-op threads); the model itself needs < 200 MB.
   * @default 4096
   */
  readonly memorySize?: number;
  /**
   * Executions reserved for the stage (one per partition of chunks.to-embed).
   * @default - no reservation
   */
  readonly reservedConcurrency?: number;
  /**
   * Chunk groups per Kafka batch.
   * @default 8
   */
  readonly batchSize?: number;
  /**
   * Days a finished job stays readable before its TTL removes it.
   * @default 30
   */
  readonly jobRetentionDays?: number;
}

/** chunks.to-embed → the embed function embeds chunk groups with ONNX Runtime, publishes to chunks.embedded. */
export class EmbedStage extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly eventSource: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: EmbedStageProps) {
    super(scope, id);
    const { network, storage, streaming } = props;
    this.function = nodeFunction(this, "Function", {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      entry: "functions/embed/handler.ts",
      serviceName: "embed",
      description: "chunks.to-embed → embeds chunk groups with ONNX Runtime, publishes to chunks.embedded",
      // CPU-bound inference: memory buys vCPU.
      memorySize: props.memorySize ?? 4096,
      timeout: Duration.minutes(5),
      // chunks.to-embed is wide (12 partitions) so embedding fans out; the reservation keeps that
      // many workers available even when search traffic peaks, and caps them there.
      reservedConcurrentExecutions: props.reservedConcurrency,
      ...network.kafkaClientPlacement,
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      environment: environmentOf("embed", {
        JOBS_TABLE: storage.jobsTable.tableName,
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_CHUNKS_EMBEDDED: TOPICS.chunksEmbedded,
        ...modelEnvironment(props.modelLocation),
        ...embeddingEnvironment(props),
        JOB_RETENTION_DAYS: String(props.jobRetentionDays ?? 30),
      }),
    });
    // Reads the batch's jobs in one BatchGetItem; counts embedded chunks exactly once (marker Put +
    // counter Update in one transaction); fails the job of a poison record; reads a collection's
    // items (Query) for the active index and its model.
    storage.grantJobs(this.function, "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query");
    streaming.grantProduce(this.function, [TOPICS.chunksEmbedded]);
    // Models on S3 are copied to /tmp during init: read and list the prefix.
    grantCopyModels(this, this.function, props.modelLocation);

    // A record is a group of chunksPerGroup chunks; 8 groups ≈ 128 chunks per invocation keeps the
    // ONNX session busy without nearing the timeout. Embedding is stateless: bisect is safe and
    // isolates a poison group.
    this.eventSource = kafkaEventSource(this, "Events", this.function, {
      ...props,
      consumer: "embed",
      topic: TOPICS.chunksToEmbed,
      batchSize: props.batchSize ?? 8,
      maxBatchingWindow: Duration.seconds(1),
      bisectBatchOnError: true,
    });
  }
}
