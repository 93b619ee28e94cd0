import { randomUUID } from "node:crypto";
import type { Batch, Consumer, Kafka, KafkaMessage } from "kafkajs";
import type { FunctionHost, InvokeResult } from "./function-host.ts";

/** A Kafka event source mapping as the template declares it (AWS::Lambda::EventSourceMapping). */
export interface KafkaMappingDefinition {
  /** The mapping's logical id: names its consumer and its dead-letter objects. */
  id: string;
  topics: string[];
  consumerGroupId: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  startingPosition: "TRIM_HORIZON" | "LATEST";
  /** Retries after the first attempt; -1 = until it succeeds (AWS's default for Kafka). */
  maximumRetryAttempts: number;
  bisectBatchOnFunctionError: boolean;
  eventSourceArn: string;
  bootstrapServers: string;
}

/** Where a batch goes once its retries are exhausted (the mapping's OnFailure destination). */
export type FailureDestination = (record: FailedBatchRecord, partitionKey: string) => Promise<void>;

/** The document AWS writes to an on-failure destination; S3 destinations carry the payload too. */
export interface FailedBatchRecord {
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: "RetryAttemptsExhausted";
    approximateInvokeCount: number;
  };
  responseContext: { statusCode: number; executedVersion: string; functionError: string };
  version: "1.0";
  timestamp: string;
  KafkaBatchInfo: {
    batchSize: number;
    eventSourceArn: string;
    bootstrapServers: string;
    payloadSize: number;
    recordsInfo: Record<
      string,
      { firstRecordOffset: string; lastRecordOffset: string; firstRecordTimestamp: string; lastRecordTimestamp: string }
    >;
  };
  payload: MskEvent;
}

export interface MskRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  timestampType: "CREATE_TIME" | "LOG_APPEND_TIME";
  key?: string;
  value: string;
  headers: Record<string, number[]>[];
}

export interface MskEvent {
  eventSource: "aws:kafka";
  eventSourceArn: string;
  bootstrapServers: string;
  records: Record<string, MskRecord[]>;
}

/** Builds the event Lambda delivers for MSK: records grouped by "topic-partition", key and value base64. */
export function mskEvent(
  mapping: Pick<KafkaMappingDefinition, "eventSourceArn" | "bootstrapServers">,
  topic: string,
  partition: number,
  messages: KafkaMessage[],
): MskEvent {
  return {
    eventSource: "aws:kafka",
    eventSourceArn: mapping.eventSourceArn,
    bootstrapServers: mapping.bootstrapServers,
    records: {
      [`${topic}-${partition}`]: messages.map((message) => ({
        topic,
        partition,
        offset: Number(message.offset),
        timestamp: Number(message.timestamp),
        // Bit 3 of the record batch attributes marks broker (log-append) time.
        timestampType: (message.attributes & 0b1000) !== 0 ? "LOG_APPEND_TIME" : "CREATE_TIME",
        ...(message.key ? { key: message.key.toString("base64") } : {}),
        value: (message.value ?? Buffer.alloc(0)).toString("base64"),
        headers: Object.entries(message.headers ?? {}).flatMap(([name, value]) =>
          (Array.isArray(value) ? value : [value]).map((item) => ({ [name]: [...Buffer.from(item ?? "")] })),
        ),
      })),
    },
  };
}

/**
 * Polls a topic for a function the way Lambda's Kafka event source mapping does: one consumer
 * group per mapping, batches per partition up to the batch size, one batch in flight per
 * partition, offsets committed only once the batch succeeded or was sent to the on-failure
 * destination after its retries.
 */
export class KafkaEventSource {
  private consumer: Consumer | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly mapping: KafkaMappingDefinition,
    private readonly host: FunctionHost,
    private readonly onFailure: FailureDestination | undefined,
    private readonly log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  async start(partitionsConcurrently: number): Promise<void> {
    const { mapping } = this;
    const consumer = this.kafka.consumer({
      groupId: mapping.consumerGroupId,
      // A batch may take as long as the function's timeout: heartbeats keep the member alive meanwhile.
      sessionTimeout: 60_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: Math.max(100, mapping.maximumBatchingWindowSeconds * 1000),
      retry: { retries: 10 },
    });
    this.consumer = consumer;
    await consumer.connect();
    for (const topic of mapping.topics) {
      await consumer.subscribe({ topic, fromBeginning: mapping.startingPosition === "TRIM_HORIZON" });
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: partitionsConcurrently,
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
        for (let start = 0; start < batch.messages.length; start += mapping.batchSize) {
          if (!isRunning() || isStale()) return;
          const messages = batch.messages.slice(start, start + mapping.batchSize);
          const beat = setInterval(() => void heartbeat().catch(() => {}), 2_000);
          try {
            await this.deliver(batch, messages);
          } finally {
            clearInterval(beat);
          }
          const last = messages.at(-1);
          if (last) resolveOffset(last.offset);
          await commitOffsetsIfNecessary({
            topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: nextOffset(last) }] }],
          });
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }

  /** Invokes until the batch succeeds or its retries run out; then hands it to the on-failure destination. */
  private async deliver(batch: Pick<Batch, "topic" | "partition">, messages: KafkaMessage[]): Promise<void> {
    const { mapping } = this;
    const event = mskEvent(mapping, batch.topic, batch.partition, messages);
    let attempts = 0;
    let result: InvokeResult;
    for (;;) {
      result = await this.host.invoke(event);
      attempts++;
      if (result.ok) return;
      const retriesLeft = mapping.maximumRetryAttempts < 0 || attempts <= mapping.maximumRetryAttempts;
      if (!retriesLeft) break;
      if (mapping.bisectBatchOnFunctionError && messages.length > 1) {
        // Split and retry each half on its own, as AWS does with BisectBatchOnFunctionError.
        const half = Math.ceil(messages.length / 2);
        await this.deliver(batch, messages.slice(0, half));
        await this.deliver(batch, messages.slice(half));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempts)));
    }
    const where = `${batch.topic}-${batch.partition}@${messages[0]?.offset}..${messages.at(-1)?.offset}`;
    if (!this.onFailure) {
      this.log(`[${mapping.id}] batch ${where} failed ${attempts} times and has no on-failure destination: dropped`);
      return;
    }
    await this.onFailure(
      failedBatchRecord(mapping, this.host.definition.name, event, result, attempts),
      `${batch.topic}-${batch.partition}`,
    );
    this.log(`[${mapping.id}] batch ${where} failed ${attempts} times: sent to the on-failure destination`);
  }
}

const nextOffset = (message: KafkaMessage | undefined) => String(Number(message?.offset ?? -1) + 1);

/** 1 s, 2 s, 4 s … capped at 30 s between retries of the same batch. */
const backoffMs = (attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1));

function failedBatchRecord(
  mapping: KafkaMappingDefinition,
  functionName: string,
  event: MskEvent,
  result: InvokeResult,
  attempts: number,
): FailedBatchRecord {
  const recordsInfo: FailedBatchRecord["KafkaBatchInfo"]["recordsInfo"] = {};
  let batchSize = 0;
  for (const [topicPartition, records] of Object.entries(event.records)) {
    const [first, last] = [records[0], records.at(-1)];
    if (!first || !last) continue;
    batchSize += records.length;
    recordsInfo[topicPartition] = {
      firstRecordOffset: String(first.offset),
      lastRecordOffset: String(last.offset),
      firstRecordTimestamp: new Date(first.timestamp).toISOString(),
      lastRecordTimestamp: new Date(last.timestamp).toISOString(),
    };
  }
  return {
    requestContext: {
      requestId: result.requestId || randomUUID(),
      functionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
      condition: "RetryAttemptsExhausted",
      approximateInvokeCount: attempts,
    },
    responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
    version: "1.0",
    timestamp: new Date().toISOString(),
    KafkaBatchInfo: {
      batchSize,
      eventSourceArn: mapping.eventSourceArn,
      bootstrapServers: mapping.bootstrapServers,
      payloadSize: Buffer.byteLength(JSON.stringify(event)),
      recordsInfo,
    },
    payload: event,
  };
}
