import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Admin, Kafka, Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FunctionHost } from "../../localstack/emulator/function-host.ts";
import { KafkaEventSource } from "../../localstack/emulator/kafka-event-source.ts";
import { kafkaClient, uniqueName } from "../support/clients.ts";

const kafka: Kafka = kafkaClient();
const recordFile = join(mkdtempSync(join(tmpdir(), "esm-concurrency-")), "records.jsonl");
const host = new FunctionHost(
  {
    name: "holder",
    modulePath: fileURLToPath(new URL("./fixtures/hold.ts", import.meta.url)),
    exportName: "holdRecords",
    environment: { RECORD_FILE: recordFile },
    timeoutSeconds: 60,
    memoryMb: 128,
    concurrency: 2,
  },
  () => {},
);
const topic = uniqueName("esm-concurrency");
let admin: Admin;
let producer: Producer;
let source: KafkaEventSource;

const started = (): { partition: number; value: string }[] =>
  existsSync(recordFile)
    ? readFileSync(recordFile, "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
    : [];

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  producer = kafka.producer();
  await producer.connect();
  source = new KafkaEventSource(
    kafka,
    {
      id: "ConcurrencyMapping",
      topics: [topic],
      consumerGroupId: uniqueName("esm-concurrency-group"),
      batchSize: 10,
      maximumBatchingWindowSeconds: 0.1,
      startingPosition: "TRIM_HORIZON",
      maximumRetryAttempts: 0,
      bisectBatchOnFunctionError: false,
      eventSourceArn: "arn:aws:kafka:local:000000000000:cluster/local/test",
      bootstrapServers: process.env.KAFKA_BROKERS ?? "",
    },
    host,
    undefined,
    () => {},
  );
  await source.start(2);
});

afterAll(async () => {
  writeFileSync(`${recordFile}.release`, "");
  await producer.disconnect();
  await source.stop();
  await host.close();
  await admin.disconnect();
});

describe("Kafka event source concurrency", () => {
  it("keeps delivering a partition's new batches while another partition's batch is still running", async () => {
    await producer.send({
      topic,
      messages: [
        { partition: 0, value: "hold" },
        { partition: 1, value: "first" },
      ],
    });
    expect(await waitFor(() => started().length === 2, 40_000)).toBe(true);

    // Partition 0's batch is still held; what partition 1 receives now must not wait for it.
    await producer.send({ topic, messages: [{ partition: 1, value: "second" }] });
    const delivered = await waitFor(() => started().some((record) => record.value === "second"), 20_000);
    const heldMeanwhile = !existsSync(`${recordFile}.release`);
    writeFileSync(`${recordFile}.release`, "");
    expect(delivered).toBe(true);
    expect(heldMeanwhile).toBe(true);
    expect(started().map((record) => `${record.partition}:${record.value}`)).toEqual(
      expect.arrayContaining(["0:hold", "1:first", "1:second"]),
    );
  });
});
