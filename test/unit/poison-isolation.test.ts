import { describe, expect, it } from "vitest";
import { isTransient } from "../../shared/adapters/faults.ts";
import { type BatchItem, batchResponse, processIsolated } from "../../shared/stages/records.ts";

const items = (...values: string[]): BatchItem<{ jobId: string }>[] =>
  values.map((jobId, offset) => ({ ref: { partition: "topic-0", offset }, message: { jobId } }));

/** A stage that fails any run containing "poison", and "flaky" runs while `down` is set. */
function stage(options: { down?: () => boolean } = {}) {
  const completed: string[] = [];
  const failed = new Map<string, string>();
  const noted = new Map<string, string>();
  const deps = {
    run: async (messages: { jobId: string }[]) => {
      const ids = messages.map((message) => message.jobId);
      if (ids.includes("poison")) throw new RangeError("Maximum call stack size exceeded");
      if (ids.includes("flaky") && options.down?.()) {
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9092"), { code: "ECONNREFUSED" });
      }
      completed.push(...ids);
    },
    retry: <T>(task: () => Promise<T>) => task(),
    isTransient,
    reasonOf: (error: unknown) => (error as Error).message,
    fail: async (message: { jobId: string }, reason: string) => {
      failed.set(message.jobId, reason);
    },
    note: async (messages: { jobId: string }[], reason: string) => {
      for (const message of messages) noted.set(message.jobId, reason);
    },
  };
  return { deps, completed, failed, noted };
}

describe("poison isolation", () => {
  it("completes a clean batch in one run", async () => {
    const { deps, completed } = stage();
    const result = await processIsolated(items("a", "b", "c"), deps);
    expect(result).toEqual({ retry: [], failed: [] });
    expect(completed).toEqual(["a", "b", "c"]);
  });

  it("fails only the poison record's job; the rest of the batch completes", async () => {
    const { deps, completed, failed } = stage();
    const result = await processIsolated(items("a", "poison", "c"), deps);
    expect(completed).toEqual(["a", "c"]);
    expect([...failed.keys()]).toEqual(["poison"]);
    expect(failed.get("poison")).toContain("Maximum call stack");
    expect(result.retry).toEqual([]);
  });

  it("hands a transient fault back for retry without failing any job, noting the cause", async () => {
    const { deps, failed, noted } = stage({ down: () => true });
    const result = await processIsolated(items("a", "flaky", "c"), deps);
    expect(failed.size).toBe(0);
    expect(result.retry.map((item) => item.message.jobId)).toEqual(["a", "flaky", "c"]);
    expect(noted.get("flaky")).toContain("ECONNREFUSED");
    expect(batchResponse(result.retry.map((item) => item.ref)).batchItemFailures[0]).toEqual({
      itemIdentifier: { partition: "topic-0", offset: 0 },
    });
  });

  it("isolates a poison record and retries only the transient one when both are in a batch", async () => {
    const { deps, completed, failed } = stage({ down: () => true });
    const result = await processIsolated(items("poison", "a", "flaky"), deps);
    // The batch run fails for the poison (not transient), so each record runs alone.
    expect(completed).toEqual(["a"]);
    expect([...failed.keys()]).toEqual(["poison"]);
    expect(result.retry.map((item) => item.message.jobId)).toEqual(["flaky"]);
  });
});

describe("isTransient", () => {
  it("tells faults that go away from faults of the input or the code", () => {
    expect(isTransient(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransient({ name: "KafkaJSNumberOfRetriesExceeded", message: "", cause: {} })).toBe(true);
    expect(isTransient({ name: "KafkaJSProtocolError", retriable: true })).toBe(true);
    expect(isTransient({ name: "ThrottlingException", $metadata: { httpStatusCode: 400 } })).toBe(true);
    expect(isTransient({ name: "InternalError", $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isTransient(new Error("wrapped", { cause: { code: "ETIMEDOUT" } }))).toBe(true);
    expect(isTransient(new RangeError("Maximum call stack size exceeded"))).toBe(false);
    expect(isTransient(new TypeError("x is undefined"))).toBe(false);
    expect(isTransient({ name: "ValidationException", $metadata: { httpStatusCode: 400 } })).toBe(false);
  });
});
