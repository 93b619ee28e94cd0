import { describe, expect, it } from "vitest";
import { handler, parseTopics, planTopics } from "../../infra/topics-handler.ts";

describe("topics custom resource", () => {
  it("parses CloudFormation's stringly-typed properties", () => {
    expect(parseTopics([{ Name: "chunks.to-embed", Partitions: "12" }])).toEqual([
      { name: "chunks.to-embed", partitions: 12 },
    ]);
    expect(() => parseTopics([])).toThrow(/non-empty/);
    expect(() => parseTopics([{ Name: "bad topic", Partitions: "1" }])).toThrow(/invalid topic name/);
    expect(() => parseTopics([{ Name: "t", Partitions: "0" }])).toThrow(/invalid partition count/);
  });

  it("creates missing topics, grows partitions, and refuses to shrink", () => {
    const existing = new Map([
      ["documents.uploaded", 6],
      ["chunks.to-embed", 8],
      ["chunks.embedded", 12],
    ]);
    const plan = planTopics(existing, [
      { name: "documents.uploaded", partitions: 6 },
      { name: "chunks.to-embed", partitions: 12 },
      { name: "chunks.embedded", partitions: 6 },
      { name: "new.topic", partitions: 3 },
    ]);
    expect(plan.unchanged).toEqual(["documents.uploaded"]);
    expect(plan.grow).toEqual([{ name: "chunks.to-embed", partitions: 12 }]);
    expect(plan.create).toEqual([{ name: "new.topic", partitions: 3 }]);
    expect(plan.errors).toEqual([expect.stringContaining("chunks.embedded has 12 partitions")]);
  });

  it("does nothing on Delete (the topics go with the cluster)", async () => {
    const result = await handler({
      RequestType: "Delete",
      PhysicalResourceId: "Topics-kafka-topics",
      ResourceProperties: { ServiceToken: "arn", BootstrapBrokers: "unreachable:9098", Topics: [] },
    } as never);
    expect(result).toEqual({ PhysicalResourceId: "Topics-kafka-topics" });
  });
});
