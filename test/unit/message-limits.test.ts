import { describe, expect, it } from "vitest";
import { MAX_PRODUCE_BYTES, produceRequests } from "../../shared/adapters/kafka-publisher.ts";
import { MessageTooLarge } from "../../shared/domain/errors.ts";
import type { Chunk } from "../../shared/domain/types.ts";
import { groupChunks, MAX_GROUP_CHUNK_BYTES } from "../../shared/stages/split.ts";

const chunk = (ordinal: number, length: number): Chunk => ({
  chunkId: `d:${ordinal}`,
  documentId: "d",
  ordinal,
  page: 1,
  start: 0,
  end: length,
  text: "x".repeat(length),
});

describe("Kafka message limits", () => {
  it("cuts a produce into requests by bytes, keeping order, so no partition's record batch exceeds the limit", () => {
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: "v".repeat(100_000) }));
    const requests = produceRequests(messages, MAX_PRODUCE_BYTES);
    expect(requests.length).toBeGreaterThan(5);
    expect(requests.flat()).toEqual(messages);
    for (const request of requests) {
      const bytes = request.reduce(
        (sum, message) => sum + String(message.value).length + String(message.key).length + 64,
        0,
      );
      expect(bytes).toBeLessThanOrEqual(MAX_PRODUCE_BYTES);
    }
  });

  it("refuses a single message larger than the limit with a permanent error", () => {
    expect(() => produceRequests([{ value: "v".repeat(MAX_PRODUCE_BYTES) }], MAX_PRODUCE_BYTES)).toThrow(
      MessageTooLarge,
    );
  });

  it("groups chunks by count and by bytes", () => {
    const small = groupChunks(
      Array.from({ length: 40 }, (_, i) => chunk(i, 100)),
      16,
      MAX_GROUP_CHUNK_BYTES,
    );
    expect(small.map((group) => group.length)).toEqual([16, 16, 8]);
    const big = groupChunks(
      Array.from({ length: 40 }, (_, i) => chunk(i, 50_000)),
      512,
      MAX_GROUP_CHUNK_BYTES,
    );
    expect(big.flat()).toHaveLength(40);
    for (const group of big) {
      expect(group.reduce((sum, c) => sum + JSON.stringify(c).length, 0)).toBeLessThanOrEqual(MAX_GROUP_CHUNK_BYTES);
    }
  });
});
