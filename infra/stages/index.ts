import { Duration } from "aws-cdk-lib";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import { Construct } from "constructs";
import { type KafkaConsumerProps, kafkaEventSource } from "../kafka-consumer.ts";
import { environmentOf, type FunctionDefaults, nodeFunction } from "../lambda-defaults.ts";
import type { Network } from "../network.ts";
import type { Storage } from "../storage.ts";
import { type Streaming, TOPICS } from "../streaming.ts";
import type { CompactionStage } from "./compaction.ts";

export interface IndexStageProps extends FunctionDefaults, KafkaConsumerProps {
  readonly storage: Storage;
  /** The native layer (faiss-node). */
  readonly nativeLayer: lambda.ILayerVersion;
  /**
   * Memory of the function, MB (builds a FAISS index and a BM25 model per batch).
   * @default 2048
   */
  readonly memorySize?: number;
  /**
   * Executions reserved for the stage (one per partition of chunks.embedded).
   * @default - no reservation
   */
  readonly reservedConcurrency?: number;
  /**
   * Chunk groups per Kafka batch (one batch = one segment).
   * @default 50
   */
  readonly batchSize?: number;
  /**
   * Compaction, which the index function hands a collection to (asynchronously) after a batch that
   * leaves segments to merge; its merge bounds tell the index function when to ask.
   * @default - no compaction: every batch stays a segment of its own
   */
  readonly compaction?: CompactionStage;
  /**
   * Days a finished job stays readable before its TTL removes it.
   * @default 30
   */
  readonly jobRetentionDays?: number;
  /**
   * Chunks per group it sends back to embedding (a migration's re-embedding).
   * @default 16
   */
  readonly chunksPerGroup?: number;
  readonly network: Network;
  readonly streaming: Streaming;
}

/**
 * chunks.embedded → the index function writes one immutable segment per batch and collection
 * and lists it in the collection's manifest.
 */
export class IndexStage extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly eventSource: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: IndexStageProps) {
    super(scope, id);
    const { storage } = props;
    this.function = nodeFunction(this, "Function", {
      stage: props.stage,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      entry: "functions/index/handler.ts",
      serviceName: "index",
      description: "chunks.embedded → writes one immutable index segment per batch and updates the collection manifest",
      memorySize: props.memorySize ?? 2048,
      timeout: Duration.minutes(5),
      // chunks.embedded is keyed by collection: one writer per partition keeps a collection's
      // segments in order; never more than the partition count, and those are guaranteed.
      reservedConcurrentExecutions: props.reservedConcurrency,
      // In the VPC: it publishes to Kafka (chunks going back to embedding).
      ...props.network.kafkaClientPlacement,
      layers: [props.nativeLayer],
      usesNativeLayer: true,
      environment: environmentOf("index", {
        JOBS_TABLE: storage.jobsTable.tableName,
        INDEX_BUCKET: storage.indexBucket.bucketName,
        JOB_RETENTION_DAYS: String(props.jobRetentionDays ?? 30),
        // Sends chunks back to embedding: an upload's copy for a collection's second index, a
        // migration's re-embedding.
        KAFKA_BROKERS: props.streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_CHUNKS_TO_EMBED: TOPICS.chunksToEmbed,
        CHUNKS_PER_GROUP: String(props.chunksPerGroup ?? 16),
        ...(props.compaction ? { COMPACT_FUNCTION: props.compaction.function.functionName } : {}),
        MERGE_FACTOR: props.compaction?.mergeFactor ?? "4",
        MAX_SEGMENT_CHUNKS: props.compaction?.maxSegmentChunks ?? "262144",
      }),
    });
    // Writes segments and reads them back (migrations); reads the batch's jobs and markers
    // (BatchGetItem); commits markers, counters and manifests (merging is the compaction
    // function's); reads a collection's items (Query).
    storage.grantJobs(this.function, "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query");
    props.streaming.grantProduce(this.function, [TOPICS.chunksToEmbed]);
    storage.grantSegments(this.function, "IndexSegments", "s3:GetObject", "s3:PutObject");
    props.compaction?.grantRequest(this.function);

    // One batch = one segment: larger batches and a longer window mean fewer, bigger segments
    // (Lambda also caps a batch at 6 MB of payload). No bisect: a retried batch skips the groups
    // already counted (per-group markers), so halving it would only multiply small segments.
    this.eventSource = kafkaEventSource(this, "Events", this.function, {
      ...props,
      consumer: "index",
      topic: TOPICS.chunksEmbedded,
      batchSize: props.batchSize ?? 50,
      maxBatchingWindow: Duration.seconds(5),
      bisectBatchOnError: false,
    });
  }
}
