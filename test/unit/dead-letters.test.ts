import { describe, expect, it } from "vitest";
import { describeDeadLetter, type FailedBatch, tenantView } from "../../shared/stages/dead-letters.ts";

const record = (offset: number, message: object) => ({
  topic: "chunks.embedded",
  partition: 0,
  offset,
  value: Buffer.from(JSON.stringify(message)).toString("base64"),
});

/** A batch as Lambda's S3 on-failure destination writes it, carrying two tenants' jobs. */
const batch: FailedBatch = {
  requestContext: { functionArn: "arn:aws:lambda:us-east-1:1:function:dd-index", approximateInvokeCount: 3 },
  timestamp: "2026-11-23T10:00:00.000Z",
  payload: {
    records: {
      "chunks.embedded-0": [
        record(1, { jobId: "a1", tenant: "acme" }),
        record(2, { jobId: "a2", tenant: "acme" }),
        record(3, { jobId: "g1", tenant: "globex" }),
        record(4, { jobId: "a1", tenant: "acme" }),
      ],
    },
  },
};

describe("dead letters", () => {
  it("describe a failed batch: function, topic, attempts, and the jobs of each tenant", () => {
    const letter = describeDeadLetter("aws/lambda/x/1.json", batch);
    expect(letter).toMatchObject({
      key: "aws/lambda/x/1.json",
      functionName: "dd-index",
      topic: "chunks.embedded",
      records: 4,
      attempts: 3,
      jobIds: ["a1", "a2", "g1"],
      tenants: ["acme", "globex"],
      jobsByTenant: { acme: ["a1", "a2"], globex: ["g1"] },
      // No response context: taken as a failure of the function itself (never redriven on its own).
      functionFailed: true,
    });
  });

  it("tell a batch the function failed on from one transient faults kept back (a partial batch response)", () => {
    const failedOn = { ...batch, responseContext: { functionError: "Unhandled" } };
    const keptBack = { ...batch, responseContext: { functionError: "" } };
    expect(describeDeadLetter("k", failedOn).functionFailed).toBe(true);
    expect(describeDeadLetter("k", keptBack).functionFailed).toBe(false);
  });

  it("show a tenant only its own jobs of a shared batch", () => {
    const letter = describeDeadLetter("k", batch);
    expect(tenantView(letter, "globex")).toEqual({
      key: "k",
      functionName: "dd-index",
      topic: "chunks.embedded",
      records: 4,
      failedAt: "2026-11-23T10:00:00.000Z",
      attempts: 3,
      jobIds: ["g1"],
      tenants: ["globex"],
    });
  });
});
