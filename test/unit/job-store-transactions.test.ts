import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { JobStore } from "../../shared/adapters/job-store.ts";

/** A client whose TransactWriteItems cancels with these reasons, one list per call, then commits. */
function cancelling(...calls: string[][]) {
  let sent = 0;
  const db = {
    send: async () => {
      const codes = calls[sent++];
      if (!codes) return {};
      throw new TransactionCanceledException({
        message: "Transaction cancelled",
        $metadata: {},
        CancellationReasons: codes.map((Code) => ({ Code })),
      });
    },
  } as unknown as DynamoDBDocumentClient;
  return { store: new JobStore(db, "jobs"), sends: () => sent };
}

// The real paths (commit, replay) run against DynamoDB Local in test/integration/job-store.test.ts;
// DynamoDB Local does not produce transaction conflicts on demand, so their handling is tested here.
describe("JobStore transactions", () => {
  it("tries again when another transaction held the job item, and counts the batch", async () => {
    const { store, sends } = cancelling(["None", "TransactionConflict"], ["None", "TransactionConflict"]);
    expect(await store.countBatch("j1", "embedded", "j1:0", 3)).toBe(true);
    expect(sends()).toBe(3);
  });

  it("reports a batch whose marker exists as counted before, without trying again", async () => {
    const { store, sends } = cancelling(["ConditionalCheckFailed", "None"]);
    expect(await store.countBatch("j1", "embedded", "j1:0", 3)).toBe(false);
    expect(sends()).toBe(1);
  });

  it("throws anything else for the caller's retry instead of taking it for a replay", async () => {
    const { store } = cancelling(["ValidationError", "None"]);
    await expect(store.countBatch("j1", "embedded", "j1:0", 3)).rejects.toBeInstanceOf(TransactionCanceledException);
  });
});
