import type { Admin } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumerLag } from "../../localstack/emulator/consumer-lag.ts";
import { kafkaClient, uniqueName } from "../support/clients.ts";

/** Consumer lag as the runtime's GET /metrics reports it, against a real broker. */
const kafka = kafkaClient();
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await admin.disconnect();
});

describe("consumer lag", () => {
  it("is the end offset minus the committed offset, per partition", async () => {
    const topic = uniqueName("lag");
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        ...Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: `a${i}` })),
        ...Array.from({ length: 2 }, (_, i) => ({ partition: 1, value: `b${i}` })),
      ],
    });
    await producer.disconnect();
    const group = uniqueName("lag-group");

    // Before the group's first commit: everything is behind when reading from the start, nothing from the end.
    expect((await consumerLag(admin, group, [topic], true)).map((p) => [p.partition, p.lag])).toEqual([
      [0, 5],
      [1, 2],
    ]);
    expect((await consumerLag(admin, group, [topic], false)).map((p) => p.lag)).toEqual([0, 0]);

    // Committed offsets are "the next record to read".
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: "3" }] });
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 1, offset: "2" }] });
    expect(await consumerLag(admin, group, [topic], true)).toEqual([
      { group, topic, partition: 0, committed: 3, end: 5, lag: 2 },
      { group, topic, partition: 1, committed: 2, end: 2, lag: 0 },
    ]);
    await admin.deleteTopics({ topics: [topic] });
  });
});
