import type { Duration } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import type { Streaming, TopicName } from "./streaming.ts";

/** The functions fed by a Kafka event source mapping, one per pipeline topic. */
export const KAFKA_CONSUMERS = ["split", "embed", "index"] as const;
export type KafkaConsumer = (typeof KAFKA_CONSUMERS)[number];

/** Consumer group of a stage's event source mapping (fixed once created: Lambda cannot change it). */
export const consumerGroupId = (fn: KafkaConsumer) => `datadistiller-${fn}`;

/**
 * Where a Kafka event source mapping sends a batch whose retries ran out: the dead-letter bucket.
 * An S3 destination keeps the failed batch itself (payload + metadata), so it can be replayed.
 *
 * CDK's S3OnFailureDestination grants read/write/delete on the whole bucket; Lambda only needs
 * s3:PutObject and s3:ListBucket, so this grants exactly that.
 */
export class DeadLetterBucketDestination implements lambda.IEventSourceDlq {
  constructor(private readonly bucket: s3.IBucket) {}

  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    targetHandler.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DeadLetterWrite",
        actions: ["s3:PutObject"],
        resources: [this.bucket.arnForObjects("*")],
      }),
    );
    targetHandler.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DeadLetterList",
        actions: ["s3:ListBucket"],
        resources: [this.bucket.bucketArn],
      }),
    );
    return { destination: this.bucket.bucketArn };
  }
}

/** What every Kafka-fed stage shares: the cluster, where failed batches go, and the retry policy. */
export interface KafkaConsumerProps {
  readonly streaming: Streaming;
  /** Batches whose retries ran out are written here (S3 on-failure destination). */
  readonly deadLetterBucket: s3.IBucket;
  /**
   * Retries of a failed batch before it goes to the dead-letter bucket (bounded: never -1).
   * @default 3
   */
  readonly retryAttempts?: number;
  /**
   * Provisioned-mode event pollers kept warm (provisioned mode carries the error-handling controls).
   * @default 1
   */
  readonly minimumPollers?: number;
}

export interface KafkaEventSourceOptions extends KafkaConsumerProps {
  readonly consumer: KafkaConsumer;
  readonly topic: TopicName;
  readonly batchSize: number;
  readonly maxBatchingWindow: Duration;
  readonly bisectBatchOnError: boolean;
}

/**
 * The Kafka event source mapping of a stage's function, with what its pollers need: read the
 * topic as the stage's consumer group, network interfaces in the cluster's subnets, and the
 * dead-letter bucket after bounded retries.
 *
 * Kafka event source mappings in provisioned poller mode support MaximumRetryAttempts,
 * MaximumRecordAgeInSeconds, BisectBatchOnFunctionError, ReportBatchItemFailures and on-failure
 * destinations, for MSK and self-managed Kafka alike (Lambda developer guide, "Configuring error
 * handling controls for Kafka event sources"). Without a bound, Lambda retries a failing batch
 * until the records expire from the topic and the partition stalls behind it; so retries are
 * bounded and the batch then goes to the dead-letter bucket. The handlers isolate a bad record
 * themselves (its job fails, the rest of the batch completes) and answer with the records a
 * transient fault kept from completing (ReportBatchItemFailures); Lambda checkpoints before the
 * lowest of them and retries from there, a bounded number of times, then writes the rest to the
 * dead-letter bucket, from which the operations sweeper redrives them once Kafka is back.
 */
export function kafkaEventSource(
  scope: Construct,
  id: string,
  target: lambda.IFunction,
  options: KafkaEventSourceOptions,
): lambda.EventSourceMapping {
  const { streaming, topic } = options;
  const groupId = consumerGroupId(options.consumer);
  const partitionCount = streaming.partitions[topic];
  streaming.grantConsume(target, topic, groupId);
  // The pollers create network interfaces in the cluster's subnets with the function's role.
  target.addToRolePolicy(
    new iam.PolicyStatement({
      sid: "KafkaEsmNetwork",
      actions: [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
      ],
      resources: ["*"],
    }),
  );
  const mapping = new lambda.EventSourceMapping(scope, id, {
    target,
    eventSourceArn: streaming.clusterArn,
    kafkaTopic: topic,
    kafkaConsumerGroupId: groupId,
    startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    batchSize: options.batchSize,
    maxBatchingWindow: options.maxBatchingWindow,
    retryAttempts: options.retryAttempts ?? 3,
    bisectBatchOnError: options.bisectBatchOnError,
    reportBatchItemFailures: true,
    onFailure: new DeadLetterBucketDestination(options.deadLetterBucket),
    provisionedPollerConfig: {
      minimumPollers: Math.min(options.minimumPollers ?? 1, partitionCount),
      // More pollers than partitions cannot help: a partition is read by one poller at a time.
      maximumPollers: partitionCount,
    },
  });
  // The topic must exist, and the role's Kafka/S3/EC2 permissions must be in place, before
  // Lambda validates the mapping.
  mapping.node.addDependency(streaming.topicsResource);
  if (target.role) mapping.node.addDependency(target.role);
  return mapping;
}
