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
  /**
   * FunctionResponseTypes contains ReportBatchItemFailures: the function may answer
   * `{batchItemFailures: [{itemIdentifier: {partition: "<topic>-<n>", offset}}]}`, and the batch is
   * then checkpointed before the lowest failed offset and retried from there.
   */
  reportBatchItemFailures: boolean;
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
  /** When the consumer last had a fetch answered (for operators and fault-injection tests). */
  lastFetchAt = 0;

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
      // A batch may take as long as the function's timeout: heartbeats sent while it runs keep the
      // member alive. The session is short so that, when a broker restart makes the consumer rejoin
      // as a new member, the group does not wait long for the old member to expire.
      // (6 s is the broker's group.min.session.timeout.ms.)
      sessionTimeout: 6_000,
      rebalanceTimeout: 6_000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: Math.max(100, mapping.maximumBatchingWindowSeconds * 1000),
      // Reconnect every second or two while the broker is away (kafkajs restarts a crashed
      // consumer after its last retry delay: a long backoff here is time spent idle afterwards).
      retry: { initialRetryTime: 250, maxRetryTime: 1_000, retries: 10 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.FETCH, () => {
      this.lastFetchAt = Date.now();
    });
    // Group membership changes are rare and explain redeliveries: each one goes to the log.
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) =>
      this.log(
        `[${mapping.id}] joined ${payload.groupId} as ${payload.memberId} (${payload.isLeader ? "leader" : "member"}): ${JSON.stringify(payload.memberAssignment)}`,
      ),
    );
    consumer.on(consumer.events.REBALANCING, ({ payload }) =>
      this.log(`[${mapping.id}] rebalancing ${payload.groupId} (member ${payload.memberId})`),
    );
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

  /**
   * Invokes until the batch succeeds or its retries run out; then hands what is left of it to the
   * on-failure destination. A partial batch response checkpoints the records before the lowest
   * failed offset and retries the rest (an attempt like any other); a function error retries the
   * whole batch, or its halves with BisectBatchOnFunctionError.
   */
  private async deliver(batch: Pick<Batch, "topic" | "partition">, messages: KafkaMessage[]): Promise<void> {
    const { mapping } = this;
    let pending = messages;
    let attempts = 0;
    for (;;) {
      const event = mskEvent(mapping, batch.topic, batch.partition, pending);
      const result = await this.host.invoke(event);
      attempts++;
      const retryFrom = result.ok ? this.firstFailed(batch, pending, result.value) : 0;
      if (retryFrom === undefined) return;
      pending = pending.slice(retryFrom);
      const retriesLeft = mapping.maximumRetryAttempts < 0 || attempts <= mapping.maximumRetryAttempts;
      if (!retriesLeft) {
        await this.giveUp(batch, pending, result, attempts);
        return;
      }
      if (!result.ok && mapping.bisectBatchOnFunctionError && pending.length > 1) {
        // Split and retry each half on its own, as AWS does with BisectBatchOnFunctionError.
        const half = Math.ceil(pending.length / 2);
        await this.deliver(batch, pending.slice(0, half));
        await this.deliver(batch, pending.slice(half));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempts)));
    }
  }

  /**
   * Index of the first message to retry after a successful invocation, or undefined when all
   * succeeded. Without ReportBatchItemFailures any answer is success. An identifier that names no
   * record of the batch makes the whole batch count as failed, as in AWS.
   */
  private firstFailed(
    batch: Pick<Batch, "topic" | "partition">,
    messages: KafkaMessage[],
    answer: unknown,
  ): number | undefined {
    if (!this.mapping.reportBatchItemFailures) return undefined;
    const failures = (answer as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
    if (!Array.isArray(failures) || failures.length === 0) return undefined;
    let first: number | undefined;
    for (const failure of failures) {
      const id = (failure as { itemIdentifier?: { partition?: unknown; offset?: unknown } } | null)?.itemIdentifier;
      const index = messages.findIndex((message) => Number(message.offset) === Number(id?.offset));
      if (id?.partition !== `${batch.topic}-${batch.partition}` || index < 0) return 0;
      first = Math.min(first ?? index, index);
    }
    return first;
  }

  private async giveUp(
    batch: Pick<Batch, "topic" | "partition">,
    messages: KafkaMessage[],
    result: InvokeResult,
    attempts: number,
  ): Promise<void> {
    const { mapping } = this;
    const where = `${batch.topic}-${batch.partition}@${messages[0]?.offset}..${messages.at(-1)?.offset}`;
    if (!this.onFailure) {
      this.log(`[${mapping.id}] batch ${where} failed ${attempts} times and has no on-failure destination: dropped`);
      return;
    }
    const event = mskEvent(mapping, batch.topic, batch.partition, messages);
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
    responseContext: {
      statusCode: 200,
      executedVersion: "$LATEST",
      // A partial batch response is a successful invocation: it carries no function error.
      functionError: result.ok ? "" : "Unhandled",
    },
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
