import { createHash } from "node:crypto";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobsTable } from "../../localstack/platform/jobs-table.ts";
import { InvalidJobCursorError, JobStore } from "../../shared/adapters/job-store.ts";
import { jobView } from "../../shared/domain/jobs.ts";
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
    // The split stage moves UPLOADED → EMBEDDING in one write that also says when splitting began.
    const splitStarted = new Date(Date.now() - 250).toISOString();
    expect(await store.advance("j1", "EMBEDDING", { chunksTotal: 5 }, { SPLITTING: splitStarted })).toBe(true);
    expect(await store.advance("j1", "EMBEDDING", { chunksTotal: 5 }, { SPLITTING: splitStarted })).toBe(false);
    expect((await store.get("j1"))?.stages.SPLITTING).toBe(splitStarted);

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

  it("reads many jobs and many batch markers a round trip at a time", async () => {
    const ids = Array.from({ length: 130 }, (_, i) => `many-${i}`); // more than one BatchGetItem holds
    for (const id of ids) await newJob(id);
    const jobs = await store.getMany([...ids, "many-missing", "many-0"]);
    expect(jobs.size).toBe(130);
    expect(jobs.get("many-129")).toMatchObject({ jobId: "many-129", state: "PENDING_UPLOAD", tenant: "acme" });
    expect(jobs.get("many-0")).not.toHaveProperty("pk");

    await store.countBatch("many-1", "indexed", "g0", 2);
    const batches = [
      { jobId: "many-1", batchId: "g0" },
      { jobId: "many-1", batchId: "g1" },
      { jobId: "many-2", batchId: "g0" },
    ];
    expect(await store.uncounted("indexed", batches)).toEqual(batches.slice(1));
    expect(await store.uncounted("embedded", batches)).toEqual(batches); // markers are per stage
  });

  it("counts a whole batch of groups once, even when some of them were counted before", async () => {
    for (const id of ["cb1", "cb2"]) await newJob(id);
    const cb2First = { jobId: "cb2", batchId: "cb2:0", chunks: 7 };
    const batches = [
      { jobId: "cb1", batchId: "cb1:0", chunks: 16 },
      { jobId: "cb1", batchId: "cb1:1", chunks: 4 },
      cb2First,
    ];
    expect(await store.countBatches("embedded", batches)).toEqual(batches);
    expect(await store.countBatches("embedded", batches)).toEqual([]); // the whole batch redelivered
    const more = { jobId: "cb2", batchId: "cb2:1", chunks: 1 };
    expect(await store.countBatches("embedded", [cb2First, more])).toEqual([more]); // one of them replayed
    const jobs = await store.getMany(["cb1", "cb2"]);
    expect(jobs.get("cb1")?.chunksEmbedded).toBe(20);
    expect(jobs.get("cb2")?.chunksEmbedded).toBe(8);
  });

  it("absorbs the same batch repeated inside one delivery: read once, counted once, finished once", async () => {
    await newJob("dup1");
    for (const state of ["UPLOADED", "SPLITTING"] as const) await store.advance("dup1", state);
    await store.advance("dup1", "EMBEDDING", { chunksTotal: 5 });
    const g0 = { jobId: "dup1", batchId: "dup1:0", chunks: 3 };
    const g1 = { jobId: "dup1", batchId: "dup1:1", chunks: 2 };
    // BatchGetItem refuses repeated keys, and a transaction may touch an item once: both must cope.
    expect(await store.uncounted("embedded", [g0, g0, g1, g0])).toEqual([g0, g1]);
    expect(await store.countBatches("embedded", [g0, g0, g1])).toEqual([g0, g1]);
    const seen = await store.getMany(["dup1", "dup1"]);
    const { counted, finished } = await store.countIndexed([g0, g1, g0, g1], seen);
    expect(counted).toEqual([g0, g1]);
    expect(finished.map((job) => job.jobId)).toEqual(["dup1"]);
    // Counted, not completed: the index stage completes the job once it made it searchable.
    expect(await store.get("dup1")).toMatchObject({ state: "INDEXING", chunksEmbedded: 5, chunksIndexed: 5 });
    expect(await store.completeIfDone("dup1")).toBe(true);
    expect(await store.get("dup1")).toMatchObject({ state: "COMPLETED" });
  });

  it("indexes a batch in one transaction: counts and INDEXING, naming the jobs it finishes", async () => {
    const walkToEmbedding = async (jobId: string, chunksTotal: number) => {
      await newJob(jobId);
      for (const state of ["UPLOADED", "SPLITTING"] as const) await store.advance(jobId, state);
      await store.advance(jobId, "EMBEDDING", { chunksTotal });
    };
    await walkToEmbedding("ix1", 3); // finished by this batch
    await walkToEmbedding("ix2", 10); // only partly
    const seen = await store.getMany(["ix1", "ix2"]);
    const batches = [
      { jobId: "ix1", batchId: "ix1:0", chunks: 2 },
      { jobId: "ix1", batchId: "ix1:1", chunks: 1 },
      { jobId: "ix2", batchId: "ix2:0", chunks: 4 },
    ];
    const first = await store.countIndexed(batches, seen);
    expect(first.counted).toEqual(batches);
    expect(first.finished.map((job) => job.jobId)).toEqual(["ix1"]);
    expect(await store.completeIfDone("ix1")).toBe(true);
    let jobs = await store.getMany(["ix1", "ix2"]);
    expect(jobs.get("ix1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 3 });
    expect(Object.keys(jobs.get("ix1")?.stages ?? {})).toEqual(expect.arrayContaining(["INDEXING", "COMPLETED"]));
    expect(jobs.get("ix2")).toMatchObject({ state: "INDEXING", chunksIndexed: 4 });
    const indexingSince = jobs.get("ix2")?.stages.INDEXING;

    // Replayed with the stale view: nothing is added, nothing completes twice.
    expect(await store.countIndexed(batches, seen)).toEqual({ counted: [], finished: [], completed: [] });
    // The rest of ix2 against a fresh view completes it, keeping when it started indexing.
    const rest = [{ jobId: "ix2", batchId: "ix2:1", chunks: 6 }];
    const second = await store.countIndexed(rest, await store.getMany(["ix2"]));
    expect(second.finished.map((job) => job.jobId)).toEqual(["ix2"]);
    expect(await store.completeIfDone("ix2")).toBe(true);
    jobs = await store.getMany(["ix1", "ix2"]);
    expect(jobs.get("ix1")?.chunksIndexed).toBe(3);
    expect(jobs.get("ix2")).toMatchObject({ state: "COMPLETED", chunksIndexed: 10 });
    expect(jobs.get("ix2")?.stages.INDEXING).toBe(indexingSince);
  });

  it("completes the jobs a batch finishes in the counting write, after making them searchable", async () => {
    const walkToEmbedding = async (jobId: string, chunksTotal: number) => {
      await newJob(jobId);
      await store.advance(jobId, "EMBEDDING", { chunksTotal });
    };
    await walkToEmbedding("fc1", 3); // finished by this batch
    await walkToEmbedding("fc2", 10); // only partly
    await walkToEmbedding("fc3", 2); // its total grows before the count (a second index's copies)
    const seen = await store.getMany(["fc1", "fc2", "fc3"]);
    await store.addWork([{ jobId: "fc3", batchId: "fc3:copy", chunks: 2 }]);
    const statesWhenRevealed: string[] = [];
    const batches = [
      { jobId: "fc1", batchId: "fc1:0", chunks: 3 },
      { jobId: "fc2", batchId: "fc2:0", chunks: 4 },
      { jobId: "fc3", batchId: "fc3:0", chunks: 2 },
    ];
    const options = {
      beforeCompleting: async (jobs: { jobId: string }[]) => {
        const now = await store.getMany(jobs.map((job) => job.jobId));
        statesWhenRevealed.push(...jobs.map((job) => `${job.jobId} ${now.get(job.jobId)?.state}`));
      },
    };
    const result = await store.countIndexed(batches, seen, options);
    // fc3's changed total cancels the transaction: everything is then counted one batch at a time,
    // and nothing is completed by a count (fc1 is left finished, for completeIfDone).
    expect(statesWhenRevealed).toEqual(["fc1 EMBEDDING", "fc3 EMBEDDING"]);
    expect(result.counted).toEqual(batches);
    expect(result.completed).toEqual([]);
    expect(result.finished.map((job) => job.jobId)).toEqual(["fc1"]);
    expect(await store.get("fc3")).toMatchObject({ state: "INDEXING", chunksIndexed: 2, chunksTotal: 4 });

    // Without a changed total, the count itself completes: one write, both stage times recorded.
    await walkToEmbedding("fc4", 3);
    await walkToEmbedding("fc5", 5);
    statesWhenRevealed.length = 0;
    const next = [
      { jobId: "fc4", batchId: "fc4:0", chunks: 3 },
      { jobId: "fc5", batchId: "fc5:0", chunks: 1 },
    ];
    const done = await store.countIndexed(next, await store.getMany(["fc4", "fc5"]), options);
    expect(statesWhenRevealed).toEqual(["fc4 EMBEDDING"]);
    expect(done.completed.map((job) => job.jobId)).toEqual(["fc4"]);
    expect(done.finished).toEqual([]);
    const fc4 = await store.get("fc4");
    expect(fc4).toMatchObject({ state: "COMPLETED", chunksIndexed: 3 });
    expect(Object.keys(fc4?.stages ?? {})).toEqual(expect.arrayContaining(["INDEXING", "COMPLETED"]));
    expect(await store.get("fc5")).toMatchObject({ state: "INDEXING", chunksIndexed: 1 });
    // Replayed: counted before, so nothing is revealed, counted or completed again.
    statesWhenRevealed.length = 0;
    expect(await store.countIndexed(next, await store.getMany(["fc4", "fc5"]), options)).toMatchObject({
      counted: [],
      completed: [],
    });
    expect(await store.completeIfDone("fc4")).toBe(false);
  });

  it("splits a batch too big for one transaction and still counts and completes exactly", async () => {
    await newJob("big");
    for (const state of ["UPLOADED", "SPLITTING"] as const) await store.advance("big", state);
    await store.advance("big", "EMBEDDING", { chunksTotal: 150 });
    const batches = Array.from({ length: 150 }, (_, i) => ({ jobId: "big", batchId: `big:${i}`, chunks: 1 }));
    const result = await store.countIndexed(batches, await store.getMany(["big"]));
    expect(result.counted).toHaveLength(150);
    expect(result.finished.map((job) => job.jobId)).toEqual(["big"]);
    expect(await store.get("big")).toMatchObject({ state: "INDEXING", chunksIndexed: 150 });
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

  it("finds jobs whose upload check is due; a job that moves on leaves the check index, a waiting one is looked at later", async () => {
    // Its own table: the due-date partitions are the table's, not a job's.
    const checksTable = uniqueName("checks");
    const drop = await createJobsTable(client, checksTable);
    try {
      const checks = new JobStore(DynamoDBDocumentClient.from(client), checksTable);
      const base = Date.parse("2026-06-01T00:00:00.000Z");
      const ids = Array.from({ length: 60 }, (_, i) => `due-${i}`);
      for (const [i, jobId] of ids.entries()) {
        await checks.create(
          {
            jobId,
            tenant: "acme",
            documentId: `doc-${jobId}`,
            collection: "default",
            filename: "a.txt",
            contentType: "text/plain",
            size: 1,
            metadata: {},
            objectKey: `uploads/acme/${jobId}/file`,
          },
          new Date(base + i * 1000),
        );
      }
      // A check written as an item of its own by an earlier version is found, and dropped, too.
      const shard = (createHash("sha1").update("legacy-1").digest()[0] ?? 0) % 4;
      const legacyAt = new Date(base + 500).toISOString();
      await DynamoDBDocumentClient.from(client).send(
        new PutCommand({
          TableName: checksTable,
          Item: { pk: `UPLOADCHECK#${shard}`, sk: `${legacyAt}#legacy-1`, jobId: "legacy-1", checkAt: legacyAt },
        }),
      );

      const due = await checks.dueUploads(new Date(base + 29_500));
      expect(due.map((check) => check.jobId).sort()).toEqual([...ids.slice(0, 30), "legacy-1"].sort());
      expect(due.find((check) => check.jobId === "legacy-1")?.ownItem).toBe(true);

      // An upload that arrives, or a job that fails, leaves the index with the move itself;
      // one still waiting is looked at again later.
      for (const jobId of ids.slice(1, 20)) await checks.advance(jobId, "UPLOADED");
      for (const jobId of ids.slice(20, 30)) await checks.fail(jobId, "upload never arrived");
      await checks.rescheduleUploadCheck("due-0", new Date(base + 3_600_000));
      await checks.rescheduleUploadCheck("due-1", new Date(base + 3_600_000)); // moved on: nothing
      await checks.dropUploadChecks(due);
      expect(await checks.dueUploads(new Date(base + 29_500))).toEqual([]);
      const all = await checks.dueUploads(new Date(base + 3_600_000));
      expect(all.map((check) => check.jobId).sort()).toEqual(["due-0", ...ids.slice(30)].sort());
      expect(await checks.get("due-0")).not.toHaveProperty("gsi2pk");
    } finally {
      await drop();
    }
  });
});
