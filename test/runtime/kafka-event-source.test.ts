import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Admin, Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FunctionHost } from "../../localstack/emulator/function-host.ts";
import {
  type FailedBatchRecord,
  KafkaEventSource,
  type MskEvent,
} from "../../localstack/emulator/kafka-event-source.ts";
import { kafkaClient, uniqueName } from "../support/clients.ts";

const fixture = fileURLToPath(new URL("./fixtures/handlers.ts", import.meta.url));
const kafka: Kafka = kafkaClient();
let admin: Admin;
const recordFile = join(mkdtempSync(join(tmpdir(), "esm-")), "records.jsonl");
const host = new FunctionHost(
  {
    name: "consumer",
    modulePath: fixture,
    exportName: "consumeRecords",
    environment: { RECORD_FILE: recordFile },
    timeoutSeconds: 2,
    memoryMb: 128,
    concurrency: 2,
  },
  () => {},
);
const deadLetters: FailedBatchRecord[] = [];
let source: KafkaEventSource;
const topic = uniqueName("esm-topic");

const handled = (): { partition: number; offset: number; value: string }[] =>
  existsSync(recordFile)
    ? readFileSync(recordFile, "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
    : [];

const deadBatchSize = () => deadLetters.reduce((sum, record) => sum + record.KafkaBatchInfo.batchSize, 0);

async function waitFor(condition: () => boolean, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  source = new KafkaEventSource(
    kafka,
    {
      id: "TestMapping",
      topics: [topic],
      consumerGroupId: uniqueName("esm-group"),
      batchSize: 3,
      maximumBatchingWindowSeconds: 0.1,
      startingPosition: "TRIM_HORIZON",
      maximumRetryAttempts: 2,
      bisectBatchOnFunctionError: false,
      reportBatchItemFailures: false,
      eventSourceArn: "arn:aws:kafka:local:000000000000:cluster/local/test",
      bootstrapServers: process.env.KAFKA_BROKERS ?? "",
    },
    host,
    async (record) => {
      deadLetters.push(record);
    },
    () => {},
  );
  await source.start(2);
});

afterAll(async () => {
  await source.stop();
  await host.close();
  await admin.disconnect();
});

describe("Kafka event source mapping with ReportBatchItemFailures", () => {
  it("checkpoints before the lowest failed record, retries from there, and dead-letters only what keeps failing", async () => {
    const partialFile = join(mkdtempSync(join(tmpdir(), "esm-partial-")), "records.jsonl");
    const partialHost = new FunctionHost(
      {
        name: "partial",
        modulePath: fixture,
        exportName: "reportFailures",
        environment: { RECORD_FILE: partialFile },
        timeoutSeconds: 5,
        memoryMb: 128,
        concurrency: 1,
      },
      () => {},
    );
    const partialTopic = uniqueName("esm-partial");
    await admin.createTopics({ topics: [{ topic: partialTopic, numPartitions: 1 }], waitForLeaders: true });
    const letters: FailedBatchRecord[] = [];
    const partial = new KafkaEventSource(
      kafka,
      {
        id: "PartialMapping",
        topics: [partialTopic],
        consumerGroupId: uniqueName("esm-partial-group"),
        batchSize: 3,
        maximumBatchingWindowSeconds: 0.1,
        startingPosition: "TRIM_HORIZON",
        maximumRetryAttempts: 2,
        bisectBatchOnFunctionError: false,
        reportBatchItemFailures: true,
        eventSourceArn: "arn:aws:kafka:local:000000000000:cluster/local/test",
        bootstrapServers: process.env.KAFKA_BROKERS ?? "",
      },
      partialHost,
      async (record) => {
        letters.push(record);
      },
      () => {},
    );
    try {
      await partial.start(1);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: partialTopic,
        messages: ["p1", "flaky-1", "p3", "p4", "stuck", "p6"].map((value) => ({ value })),
      });
      await producer.disconnect();
      const values = () =>
        existsSync(partialFile)
          ? readFileSync(partialFile, "utf8")
              .trim()
              .split("\n")
              .map((line) => JSON.parse(line).value as string)
          : [];
      await waitFor(() => letters.length === 1);
      const handledValues = values();
      // Records before a failed one are checkpointed: never delivered again.
      expect(handledValues.filter((value) => value === "p1")).toHaveLength(1);
      expect(handledValues.filter((value) => value === "p4")).toHaveLength(1);
      // The flaky record succeeded on its retry; the one after it was delivered again (at least once).
      expect(handledValues.filter((value) => value === "flaky-1")).toHaveLength(1);
      expect(handledValues.filter((value) => value === "p3").length).toBeGreaterThanOrEqual(1);
      // Only the stuck record and what follows it in its batch went to the destination, after 3 attempts.
      const [letter] = letters;
      expect(letter?.requestContext.approximateInvokeCount).toBe(3);
      expect(letter?.responseContext.functionError).toBe("");
      const deadValues = Object.values(letter?.payload.records ?? {})
        .flat()
        .map((record) => Buffer.from(record.value, "base64").toString());
      expect(deadValues).toEqual(["stuck", "p6"]);
    } finally {
      await partial.stop();
      await partialHost.close();
    }
  });
});

describe("Kafka event source mapping", () => {
  it("delivers the MSK event shape, keeps order within a partition, dead-letters a poison batch after its retries and goes on", async () => {
    const producer = kafka.producer();
    await producer.connect();
    // Partition 0 carries a poison record in the middle; partition 1 only good ones.
    await producer.send({
      topic,
      messages: [
        ...["a1", "a2", "a3", "poison", "a5", "a6", "a7", "a8", "a9"].map((value) => ({
          partition: 0,
          key: "k0",
          value,
        })),
        ...["b1", "b2", "b3", "b4"].map((value) => ({ partition: 1, value, headers: { trace: "t-1" } })),
      ],
    });
    await producer.disconnect();

    await waitFor(() => deadLetters.length === 1 && handled().length + deadBatchSize() === 13);

    // The batch holding the poison record went to the destination after 1 attempt + 2 retries;
    // the records after it were still processed, each exactly once, in order.
    const [dead] = deadLetters;
    expect(dead?.requestContext).toMatchObject({ condition: "RetryAttemptsExhausted", approximateInvokeCount: 3 });
    const deadRecords = Object.values(dead?.payload.records ?? {}).flat();
    const deadValues = deadRecords.map((record) => Buffer.from(record.value, "base64").toString());
    expect(deadValues).toContain("poison");
    expect(dead?.KafkaBatchInfo.recordsInfo[`${topic}-0`]).toMatchObject({
      firstRecordOffset: String(deadRecords[0]?.offset),
      lastRecordOffset: String(deadRecords.at(-1)?.offset),
    });

    const records = handled();
    const partition0 = records.filter((record) => record.partition === 0);
    const expected0 = ["a1", "a2", "a3", "poison", "a5", "a6", "a7", "a8", "a9"].filter((v) => !deadValues.includes(v));
    expect(partition0.map((record) => record.value)).toEqual(expected0);
    expect(partition0.map((record) => record.value)).toContain("a9");
    for (const partition of [0, 1]) {
      const offsets = records.filter((record) => record.partition === partition).map((record) => record.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }

    // The event is shaped as Lambda's MSK event: records grouped by topic-partition, base64 key
    // and value, headers as byte arrays.
    const events: MskEvent[] = readFileSync(`${recordFile}.events`, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    const withHeaders = events.find((event) => `${topic}-1` in event.records);
    expect(withHeaders).toMatchObject({
      eventSource: "aws:kafka",
      eventSourceArn: expect.stringContaining("arn:aws:kafka"),
    });
    const first = withHeaders?.records[`${topic}-1`]?.[0];
    expect(first).toMatchObject({
      topic,
      partition: 1,
      timestampType: "CREATE_TIME",
      headers: [{ trace: [...Buffer.from("t-1")] }],
    });
    expect(Buffer.from(first?.value ?? "", "base64").toString()).toBe("b1");
    const keyed = events.find((event) => `${topic}-0` in event.records)?.records[`${topic}-0`]?.[0];
    expect(Buffer.from(keyed?.key ?? "", "base64").toString()).toBe("k0");
  });

  it("retries a batch whose invocation timed out", async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ partition: 1, value: "slow-once" }] });
    await producer.disconnect();
    await waitFor(() => handled().some((record) => record.value === "slow-once"));
    expect(existsSync(`${recordFile}.slow`)).toBe(true);
    expect(handled().filter((record) => record.value === "slow-once")).toHaveLength(1);
    expect(deadLetters).toHaveLength(1);
  });
});
