import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobsTable } from "../../localstack/jobs-table.ts";
import { InvalidJobCursorError, JobStore } from "../../shared/job-store.ts";
import { jobView } from "../../shared/jobs.ts";
import { dynamoClient, uniqueName } from "../support/clients.ts";

const client = dynamoClient();
const table = uniqueName("jobs");
const store = new JobStore(DynamoDBDocumentClient.from(client), table);
let dropTable: () => Promise<void>;

beforeAll(async () => {
  dropTable = await createJobsTable(client, table);
});
afterAll(async () => {
  await dropTable();
  client.destroy();
});

const newJob = (jobId: string, tenant = "acme") =>
  store.create({
    jobId,
    tenant,
    documentId: `doc-${jobId}`,
    collection: "default",
    filename: "a.pdf",
    contentType: "application/pdf",
    size: 10,
    metadata: {},
    objectKey: `uploads/acme/doc-${jobId}/a.pdf`,
  });

describe("JobStore on DynamoDB Local", () => {
  it("walks a job through its states, counting each batch exactly once, and completes it when all chunks are indexed", async () => {
    await newJob("j1");
    expect(await store.advance("j1", "UPLOADED", { size: 1234 })).toBe(true);
    expect(await store.advance("j1", "UPLOADED")).toBe(false); // replayed notification
    expect(await store.advance("j1", "SPLITTING")).toBe(true);
    expect(await store.advance("j1", "EMBEDDING", { chunksTotal: 5 })).toBe(true);

    expect(await store.countBatch("j1", "embedded", "doc-j1:g0", 3)).toBe(true);
    expect(await store.countBatch("j1", "embedded", "doc-j1:g0", 3)).toBe(false); // redelivered
    expect(await store.countBatch("j1", "embedded", "doc-j1:g1", 2)).toBe(true);
    expect(await store.countBatch("j1", "indexed", "doc-j1:g0", 3)).toBe(true);
    expect(await store.advance("j1", "INDEXING")).toBe(true);
    expect(await store.completeIfDone("j1")).toBe(false); // 3 of 5
    expect(await store.countBatch("j1", "indexed", "doc-j1:g1", 2)).toBe(true);
    expect(await store.countBatch("j1", "indexed", "doc-j1:g1", 2)).toBe(false);
    expect(await store.completeIfDone("j1")).toBe(true);
    expect(await store.completeIfDone("j1")).toBe(false);
    expect(await store.fail("j1", "too late")).toBe(false); // a completed job stays completed

    const job = await store.get("j1");
    expect(job).toMatchObject({ state: "COMPLETED", size: 1234, chunksTotal: 5, chunksEmbedded: 5, chunksIndexed: 5 });
    expect(Object.keys(job?.stages ?? {})).toEqual(
      expect.arrayContaining(["PENDING_UPLOAD", "UPLOADED", "SPLITTING", "EMBEDDING", "INDEXING", "COMPLETED"]),
    );
    expect(job?.error).toBeUndefined();
  });

  it("fails a job with its reason and never moves it backwards", async () => {
    await newJob("j2");
    await store.advance("j2", "UPLOADED");
    await store.noteError("j2", "pdf-parse: bad xref");
    expect(await store.fail("j2", "the PDF is corrupt")).toBe(true);
    expect(await store.advance("j2", "SPLITTING")).toBe(false);
    const job = await store.get("j2");
    expect(job).toMatchObject({ state: "FAILED", error: "the PDF is corrupt", lastError: "pdf-parse: bad xref" });
  });

  it("reports a running job that stopped moving as stalled", async () => {
    const job = await newJob("j3");
    const later = new Date(Date.parse(job.updatedAt) + 11 * 60_000);
    expect(jobView(job, later, 10)).toMatchObject({
      stalled: true,
      error: expect.stringContaining("no progress since"),
    });
    expect(jobView(job, new Date(job.updatedAt), 10).stalled).toBe(false);
  });

  it("refuses to create the same job twice", async () => {
    await newJob("j4");
    await expect(newJob("j4")).rejects.toThrow();
  });

  it("lists a tenant's jobs newest first, a page at a time, and only that tenant's", async () => {
    for (const id of ["l1", "l2", "l3"]) {
      await newJob(id, "lister");
      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct creation times
    }
    await newJob("l-other", "someone-else");

    const first = await store.listForTenant("lister", { limit: 2 });
    expect(first.jobs.map((job) => job.jobId)).toEqual(["l3", "l2"]);
    expect(first.jobs[0]).toMatchObject({ tenant: "lister", state: "PENDING_UPLOAD", filename: "a.pdf" });
    expect(first.jobs[0]).not.toHaveProperty("gsi1pk");
    expect(first.cursor).toBeTypeOf("string");

    const rest = await store.listForTenant("lister", { limit: 2, cursor: first.cursor });
    expect(rest.jobs.map((job) => job.jobId)).toEqual(["l1"]);
    expect(rest.cursor).toBeUndefined();

    // Another tenant's cursor, or garbage, is refused rather than followed.
    const foreign = await store.listForTenant("someone-else", { limit: 1 });
    expect(foreign.jobs.map((job) => job.jobId)).toEqual(["l-other"]);
    await expect(store.listForTenant("someone-else", { cursor: first.cursor })).rejects.toBeInstanceOf(
      InvalidJobCursorError,
    );
    await expect(store.listForTenant("lister", { cursor: "not-a-cursor" })).rejects.toBeInstanceOf(
      InvalidJobCursorError,
    );
  });
});
