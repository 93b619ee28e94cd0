import { spawn } from "node:child_process";
import { once } from "node:events";
import type { Admin, Consumer, KafkaMessage } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaClient, uniqueName } from "../support/clients.ts";

const PARTITIONS = 3;
const kafka = kafkaClient();
let admin: Admin;
const consumers: Consumer[] = [];

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await Promise.all(consumers.map((consumer) => consumer.disconnect()));
  await admin.disconnect();
});

async function createTopic(): Promise<string> {
  const topic = uniqueName("test-topic");
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  return topic;
}

async function produce(topic: string, count: number): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: Array.from({ length: count }, (_, i) => ({ key: `doc-${i}`, value: `message-${i}` })),
  });
  await producer.disconnect();
}

/** Consumes with a group until `count` messages arrived; commits as it goes when asked to. */
async function consume(topic: string, groupId: string, count: number) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6_000, heartbeatInterval: 1_000 });
  consumers.push(consumer);
  const received: { partition: number; message: KafkaMessage }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        received.push({ partition, message });
        if (received.length >= count) resolve();
      },
    });
  });
  await done;
  await consumer.stop();
  return { consumer, received };
}

describe("Kafka (KRaft broker)", () => {
  it("refuses to auto-create topics", async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 1 } });
    await producer.connect();
    await expect(
      producer.send({ topic: uniqueName("never-created"), messages: [{ value: "x" }], acks: -1, timeout: 2_000 }),
    ).rejects.toThrow();
    await producer.disconnect();
  });

  it("delivers every message once to a consumer group across partitions and records its offsets", async () => {
    const topic = await createTopic();
    await produce(topic, 30);
    const groupId = uniqueName("group");

    const { received } = await consume(topic, groupId, 30);

    expect(received.map(({ message }) => message.value?.toString()).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `message-${i}`).sort(),
    );
    expect(new Set(received.map(({ partition }) => partition)).size).toBe(PARTITIONS);
    // Keyed messages keep their partition: the same key always lands on the same one.
    const partitionOfKey = new Map<string, number>();
    for (const { partition, message } of received) partitionOfKey.set(String(message.key), partition);
    expect(partitionOfKey.size).toBe(30);

    // The group's committed offsets reach the end of every partition.
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    for (const { partition, offset } of committed?.partitions ?? []) {
      expect(offset).toBe(ends.find((end) => end.partition === partition)?.high);
    }
  });

  it("redelivers what a consumer took but never committed when it dies", async () => {
    const topic = await createTopic();
    await produce(topic, 6);
    const groupId = uniqueName("group");

    // A worker takes a message and is killed before committing anything.
    const worker = spawn(
      process.execPath,
      ["--import", "tsx", "test/integration/fixtures/consume-then-die.ts", topic, groupId],
      {
        env: process.env,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const [firstChunk] = await once(worker.stdout, "data");
    const taken = String(firstChunk).trim().split("\n")[0];
    worker.kill("SIGKILL");
    await once(worker, "exit");

    // Once the broker notices the dead member, the group hands its partitions out again and
    // everything, including the message the dead worker held, is delivered.
    const { received } = await consume(topic, groupId, 6);
    const values = received.map(({ message }) => message.value?.toString());
    expect(values).toContain(taken);
    expect(values.sort()).toEqual(Array.from({ length: 6 }, (_, i) => `message-${i}`).sort());
  });
});
