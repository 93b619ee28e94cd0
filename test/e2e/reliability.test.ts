import { randomUUID } from "node:crypto";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, DataDistillerClient, type JobStatus, uploadFile } from "../../cli/api-client.ts";
import { type Platform, serviceFunction } from "../../localstack/platform/platform.ts";
import { mintToken } from "../../localstack/platform/tokens.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import type { ChunkGroup, DocumentUploaded } from "../../shared/domain/messages.ts";
import { uploadKey } from "../../shared/stages/upload.ts";
import { makeMarkdown, makeUtf8Text } from "../fixtures/make-fixtures.ts";
import { dynamoClient, s3Client } from "../support/clients.ts";
import { startTestPlatform } from "../support/platform.ts";

/**
 * Issue 12 on the real local stack: duplicates, poison records, content the platform must handle,
 * one-shot upload URLs, uploads that never arrive, dead letters redriven, FAILED jobs hidden.
 */

let platform: Platform;
const stamp = Date.now().toString(36);
const tenantA = `rel-a-${stamp}`;
const tenantB = `rel-b-${stamp}`;
let api: DataDistillerClient;
let apiB: DataDistillerClient;
let jobs: JobStore;
let kafka: Kafka;
const logs: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line));
  api = new DataDistillerClient(
    platform.runtime.apiUrl,
    await mintToken({ tenant: tenantA, audience: "datadistiller" }),
  );
  apiB = new DataDistillerClient(
    platform.runtime.apiUrl,
    await mintToken({ tenant: tenantB, audience: "datadistiller" }),
  );
  jobs = new JobStore(DynamoDBDocumentClient.from(dynamoClient()), findName("StorageJobs"));
  kafka = new Kafka({ brokers: platform.env.KAFKA_BROKERS?.split(",") ?? [], logLevel: logLevel.NOTHING });
}, 600_000);

afterAll(async () => {
  await platform?.stop();
});

/** The sweeper's logical id in the template (invoked by hand, as of a chosen time). */
const sweeper = () => serviceFunction(platform.runtime, "sweeper");

const findName = (prefix: string) => {
  for (const [logicalId, name] of platform.runtime.names) if (logicalId.startsWith(prefix)) return name;
  throw new Error(`no resource named ${prefix}* in the template`);
};

async function publish(topic: string, messages: { key?: string; value: string; partition?: number }[]) {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}

const uploadedMessage = (job: JobStatus & { tenant?: string }, tenant: string, key: string): DocumentUploaded => ({
  jobId: job.jobId,
  tenant,
  document: {
    documentId: job.documentId,
    collection: job.collection,
    contentType: "text/plain",
    filename: job.filename,
  },
  bucket: findName("StorageUploads"),
  key,
  size: 1,
});

const objectKeyOf = (url: string) => decodeURIComponent(new URL(url).pathname.split("/").slice(2).join("/"));

const expectExact = (job: JobStatus) => {
  expect(job.state, job.error).toBe("COMPLETED");
  expect(job.counts.chunksTotal).toBeGreaterThan(0);
  expect(job.counts.chunksEmbedded).toBe(job.counts.chunksTotal);
  expect(job.counts.chunksIndexed).toBe(job.counts.chunksTotal);
};

describe("duplicates", () => {
  it("absorbs the same record repeated inside one batch and across batches, counts exact", async () => {
    const text = "Duplicated deliveries are absorbed. ".repeat(400); // several chunk groups
    const ticket = await api.ingest(
      { filename: "dup.txt", contentType: "text/plain", bytes: makeUtf8Text(text) },
      { collection: "dups" },
    );
    const job = await api.job(ticket.jobId);
    const message = JSON.stringify(uploadedMessage(job, tenantA, objectKeyOf(ticket.upload.url)));
    // Three more copies of documents.uploaded in one produce (one partition: one batch, or a few),
    // on top of the one on-upload published; and again a moment later, in later batches.
    const copies = [0, 1, 2].map(() => ({ key: job.documentId, value: message }));
    await publish("documents.uploaded", copies);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await publish("documents.uploaded", copies);
    const done = await api.waitForJob(ticket.jobId, { timeoutMs: 180_000 });
    expectExact(done);
    // Late copies (after completion) change nothing either.
    await publish("documents.uploaded", copies);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const after = await api.job(ticket.jobId);
    expect(after.state).toBe("COMPLETED");
    expect(after.counts).toEqual(done.counts);
    const { results } = await api.search({ query: "duplicated deliveries absorbed", collection: "dups", k: 50 });
    const chunkIds = results.map((result) => result.chunkId);
    expect(new Set(chunkIds).size).toBe(chunkIds.length);
    expect(chunkIds.length).toBe(done.counts.chunksTotal);
  }, 300_000);
});

describe("poison isolation", () => {
  it("fails only the poison record's job in a batch with valid records of two tenants", async () => {
    const valid = async (client: DataDistillerClient, tenant: string, name: string) => {
      const ticket = await client.ingest(
        { filename: `${name}.txt`, contentType: "text/plain", bytes: makeUtf8Text(`The ${name} document is fine.`) },
        { collection: "poison" },
      );
      return {
        ticket,
        tenant,
        message: uploadedMessage(await client.job(ticket.jobId), tenant, objectKeyOf(ticket.upload.url)),
      };
    };
    const a = await valid(api, tenantA, "alpha");
    const b = await valid(apiB, tenantB, "bravo");
    // The poison: announced as uploaded, but its object does not exist (nothing can make it readable).
    const poisonTicket = await api.requestUpload({
      filename: "poison.txt",
      contentType: "text/plain",
      size: 10,
      collection: "poison",
    });
    const poison = uploadedMessage(await api.job(poisonTicket.jobId), tenantA, objectKeyOf(poisonTicket.upload.url));
    await publish(
      "documents.uploaded",
      [a.message, poison, b.message].map((message) => ({
        partition: 0,
        key: message.document.documentId,
        value: JSON.stringify(message),
      })),
    );
    const failed = await api.waitForJob(poisonTicket.jobId, { timeoutMs: 120_000 });
    expect(failed.state).toBe("FAILED");
    expect(failed.error).toMatch(/^split: /);
    expectExact(await api.waitForJob(a.ticket.jobId, { timeoutMs: 120_000 }));
    expectExact(await apiB.waitForJob(b.ticket.jobId, { timeoutMs: 120_000 }));
    // Nothing was dead-lettered: the valid records completed in the same invocation.
    for (const client of [api, apiB]) {
      const { deadLetters } = await client.deadLetters();
      expect(deadLetters.flatMap((letter) => letter.jobIds)).not.toContain(a.ticket.jobId);
      expect(deadLetters.flatMap((letter) => letter.jobIds)).not.toContain(b.ticket.jobId);
    }
  }, 240_000);
});

describe("content limits", () => {
  it("indexes a Markdown blockquote nested 5,000 deep and a 1.5 MB text of one line", async () => {
    const deep = await api.ingest(
      {
        filename: "deep.md",
        contentType: "text/markdown",
        bytes: makeMarkdown(`${"> ".repeat(5_000)}The deepest thought about quasars.\n\nA normal paragraph.`),
      },
      { collection: "limits" },
    );
    // One line, no spaces: a WordPiece tokenizer reads it as a single unknown token.
    const line = `${"z".repeat(1_500_000)}`;
    const huge = await api.ingest(
      { filename: "line.txt", contentType: "text/plain", bytes: makeUtf8Text(line) },
      { collection: "limits" },
    );
    expectExact(await api.waitForJob(deep.jobId, { timeoutMs: 120_000 }));
    const hugeJob = await api.waitForJob(huge.jobId, { timeoutMs: 240_000 });
    expectExact(hugeJob);
    // Every chunk is bounded (2,400 characters at most): hundreds of them, all indexed.
    expect(hugeJob.counts.chunksTotal).toBeGreaterThanOrEqual(Math.ceil(line.length / 2_400));
    const { results } = await api.search({ query: "quasars", collection: "limits", mode: "bm25", k: 1 });
    expect(results[0]?.documentId).toBe(deep.documentId);
  }, 300_000);
});

describe("one-shot upload URLs", () => {
  it("refuses a second PUT to a used URL, and the job keeps what it ingested", async () => {
    const first = makeUtf8Text("The original content about lighthouses.");
    const ticket = await api.ingest(
      { filename: "once.txt", contentType: "text/plain", bytes: first },
      { collection: "once" },
    );
    // The ticket names the headers to send; a browser may send them (the bucket's CORS rules).
    expect(ticket.upload).toMatchObject({
      method: "PUT",
      headers: { "Content-Type": "text/plain", "If-None-Match": "*" },
    });
    const preflight = await fetch(ticket.upload.url, {
      method: "OPTIONS",
      headers: {
        origin: "https://console.example.com",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "content-type,if-none-match",
      },
    });
    expect(preflight.ok).toBe(true);
    expect(preflight.headers.get("access-control-allow-origin")).toMatch(/^(\*|https:\/\/console\.example\.com)$/);
    expect(preflight.headers.get("access-control-allow-methods")).toContain("PUT");
    const allowedHeaders = preflight.headers.get("access-control-allow-headers")?.toLowerCase() ?? "";
    expect(allowedHeaders === "*" || allowedHeaders.includes("if-none-match"), allowedHeaders).toBe(true);
    const second = makeUtf8Text("Replaced content about submarines!!!!!!").subarray(0, first.byteLength);
    const refused = await uploadFile(ticket.upload, second, "text/plain").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(412);
    // A PUT without the signed If-None-Match header does not pass the signature either.
    const unsigned = await fetch(ticket.upload.url, {
      method: "PUT",
      headers: { "content-type": "text/plain" },
      body: second,
    });
    expect(unsigned.ok).toBe(false);
    expectExact(await api.waitForJob(ticket.jobId, { timeoutMs: 120_000 }));
    const { results } = await api.search({ query: "lighthouses", collection: "once", mode: "bm25", k: 1 });
    expect(results[0]?.text).toContain("lighthouses");
    expect((await api.search({ query: "submarines", collection: "once", mode: "bm25", k: 1 })).results).toEqual([]);
  }, 180_000);
});

describe("uploads that never arrive", () => {
  it("fails the job once its URL expired plus the grace period, with a reason", async () => {
    const ticket = await api.requestUpload({ filename: "never.txt", contentType: "text/plain", size: 10 });
    const sweepAt = async (at: number) => {
      const result = await platform.runtime.invoke(sweeper(), { time: new Date(at).toISOString() });
      expect(result.ok, JSON.stringify(result)).toBe(true);
      return result.ok ? (result.value as { uploadsExpired: string[] }) : { uploadsExpired: [] };
    };
    // Three minutes on: the URL is still valid, the job waits.
    expect((await sweepAt(Date.now() + 3 * 60_000)).uploadsExpired).not.toContain(ticket.jobId);
    expect((await api.job(ticket.jobId)).state).toBe("PENDING_UPLOAD");
    // Past expiry plus the grace period: FAILED, saying why.
    await sweepAt(Date.parse(ticket.expiresAt) + 6 * 60_000);
    const job = await api.job(ticket.jobId);
    expect(job.state).toBe("FAILED");
    expect(job.error).toMatch(/upload never arrived/);
  }, 120_000);

  it("takes up an upload whose notification was lost", async () => {
    const bytes = makeUtf8Text("An upload whose event went missing still gets indexed.");
    const jobId = randomUUID();
    const key = uploadKey(tenantA, jobId);
    // The object lands before its job exists, so its notification finds no job and is ignored: as
    // good as lost. Then the job appears, due for its first check.
    await s3Client().send(
      new PutObjectCommand({ Bucket: findName("StorageUploads"), Key: key, Body: bytes, ContentType: "text/plain" }),
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await jobs.create(
      {
        jobId,
        tenant: tenantA,
        documentId: `doc-lost-${stamp}`,
        collection: "default",
        filename: "lost.txt",
        contentType: "text/plain",
        size: bytes.byteLength,
        metadata: {},
        objectKey: key,
        uploadExpiresAt: new Date(Date.now() + 900_000).toISOString(),
      },
      new Date(),
    );
    expect((await api.job(jobId)).state).toBe("PENDING_UPLOAD");
    const swept = await platform.runtime.invoke(sweeper(), {});
    expect(swept.ok && (swept.value as { uploadsRecovered: string[] }).uploadsRecovered).toContain(jobId);
    expectExact(await api.waitForJob(jobId, { timeoutMs: 120_000 }));
  }, 180_000);
});

describe("dead letters", () => {
  /** A job in EMBEDDING with one chunk group, and that group as chunks.to-embed carries it. */
  async function embeddingJob(name: string) {
    const ticket = await api.requestUpload({
      filename: `${name}.txt`,
      contentType: "text/plain",
      size: 10,
      collection: "dlq",
    });
    for (const state of ["UPLOADED", "SPLITTING"] as const) await jobs.advance(ticket.jobId, state);
    await jobs.advance(ticket.jobId, "EMBEDDING", { chunksTotal: 1 });
    const text = `The ${name} chunk waited in a dead letter before it was indexed.`;
    const group: ChunkGroup = {
      jobId: ticket.jobId,
      tenant: tenantA,
      groupId: `${ticket.jobId}:0`,
      document: {
        documentId: ticket.documentId,
        collection: "dlq",
        contentType: "text/plain",
        filename: `${name}.txt`,
      },
      chunks: [
        {
          chunkId: `${ticket.documentId}:0`,
          documentId: ticket.documentId,
          ordinal: 0,
          page: 1,
          start: 0,
          end: text.length,
          text,
        },
      ],
    };
    return { ticket, group };
  }

  /** The failed-batch record Lambda writes to the S3 on-failure destination. */
  async function deadLetter(group: ChunkGroup, functionError: string) {
    const value = Buffer.from(JSON.stringify(group)).toString("base64");
    const record = {
      requestContext: {
        requestId: `req-${group.jobId}`,
        functionArn: "arn:aws:lambda:local:000000000000:function:DataDistiller-dev-PipelineEmbed",
        condition: "RetryAttemptsExhausted",
        approximateInvokeCount: 4,
      },
      responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError },
      version: "1.0",
      timestamp: new Date().toISOString(),
      payload: {
        eventSource: "aws:kafka",
        eventSourceArn: "arn:aws:kafka:local:000000000000:cluster/local/local",
        records: {
          "chunks.to-embed-0": [
            {
              topic: "chunks.to-embed",
              partition: 0,
              offset: 1,
              timestamp: Date.now(),
              timestampType: "CREATE_TIME",
              value,
              headers: [],
            },
          ],
        },
      },
    };
    const key = `aws/lambda/PipelineEmbedEvents/chunks.to-embed-0/${group.jobId}`;
    await s3Client().send(
      new PutObjectCommand({ Bucket: findName("StorageDeadLetters"), Key: key, Body: JSON.stringify(record) }),
    );
    return key;
  }

  it("redrives a batch dead-lettered by transient faults automatically; its job never fails", async () => {
    const { ticket, group } = await embeddingJob("transient");
    await jobs.noteError(ticket.jobId, "embed: connect ECONNREFUSED 127.0.0.1:9092");
    const key = await deadLetter(group, "");
    // The dead-letter function leaves the job open; the sweeper's next pass replays the batch.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await api.job(ticket.jobId)).state).toBe("EMBEDDING");
    const swept = await platform.runtime.invoke(sweeper(), {});
    expect(swept.ok && (swept.value as { deadLettersRedriven: string[] }).deadLettersRedriven).toContain(key);
    expectExact(await api.waitForJob(ticket.jobId, { timeoutMs: 120_000 }));
  }, 180_000);

  it("fails the jobs of a batch the function itself failed on, and an operator's redrive completes them", async () => {
    const { ticket, group } = await embeddingJob("crashed");
    await jobs.noteError(ticket.jobId, "embed: Task timed out after 300.00 seconds");
    const key = await deadLetter(group, "Unhandled");
    const failed = await api.waitForJob(ticket.jobId, { timeoutMs: 60_000 });
    expect(failed.state).toBe("FAILED");
    expect(failed.error).toMatch(/timed out/);
    // Not redriven automatically: the cause may be in the code or the input.
    await platform.runtime.invoke(sweeper(), {});
    expect((await api.deadLetters()).deadLetters.map((letter) => letter.key)).toContain(key);
    // Another tenant neither sees nor redrives it.
    expect((await apiB.deadLetters()).deadLetters.map((letter) => letter.key)).not.toContain(key);
    expect((await apiB.redriveDeadLetters()).redriven).toEqual([]);
    const { redriven } = await api.redriveDeadLetters();
    expect(redriven.map((letter) => letter.key)).toContain(key);
    expectExact(await api.waitForJob(ticket.jobId, { timeoutMs: 120_000 }));
  }, 180_000);
});

describe("FAILED jobs leave nothing searchable", () => {
  it("hides a document's chunks until its job completes, and for good once it failed", async () => {
    // The document's first upload completed; the second (same filename: same document, same chunk
    // ids) is half indexed, then fails. The first stays searchable all along.
    const first = await api.ingest(
      {
        filename: "half.txt",
        contentType: "text/plain",
        bytes: makeUtf8Text("The first upload of this document is about glockenspiels."),
      },
      { collection: "hidden" },
    );
    expectExact(await api.waitForJob(first.jobId, { timeoutMs: 120_000 }));
    const ticket = await api.requestUpload({
      filename: "half.txt",
      contentType: "text/plain",
      size: 10,
      collection: "hidden",
    });
    for (const state of ["UPLOADED", "SPLITTING"] as const) await jobs.advance(ticket.jobId, state);
    await jobs.advance(ticket.jobId, "EMBEDDING", { chunksTotal: 2 });
    const group = (ordinal: number): ChunkGroup => {
      const text = `Chunk ${ordinal} of the half-indexed document mentions xylophones.`;
      return {
        jobId: ticket.jobId,
        tenant: tenantA,
        groupId: `${ticket.jobId}:${ordinal}`,
        document: {
          documentId: ticket.documentId,
          collection: "hidden",
          contentType: "text/plain",
          filename: "half.txt",
        },
        chunks: [
          {
            chunkId: `${ticket.documentId}:${ordinal}`,
            documentId: ticket.documentId,
            ordinal,
            page: 1,
            start: 0,
            end: text.length,
            text,
          },
        ],
      };
    };
    await publish("chunks.to-embed", [{ key: "g0", value: JSON.stringify(group(0)) }]);
    const deadline = Date.now() + 60_000;
    while ((await api.job(ticket.jobId)).counts.chunksIndexed < 1) {
      if (Date.now() > deadline) throw new Error("the first group was never indexed");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(ticket.documentId).toBe(first.documentId);
    const search = (query: string) => api.search({ query, collection: "hidden", mode: "bm25", k: 5 });
    const firstUpload = async () =>
      (await search("glockenspiels")).results.map((result) => `${result.documentId}: ${result.text}`);
    const shown = [`${first.documentId}: The first upload of this document is about glockenspiels.`];
    // Half indexed: nothing of it is searchable yet, and the first upload still is.
    expect((await search("xylophones")).results).toEqual([]);
    expect(await firstUpload()).toEqual(shown);
    await jobs.fail(ticket.jobId, "embed: gave up");
    await publish("chunks.to-embed", [{ key: "g1", value: JSON.stringify(group(1)) }]);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect((await api.job(ticket.jobId)).state).toBe("FAILED");
    expect((await search("xylophones")).results).toEqual([]);
    expect(await firstUpload()).toEqual(shown);
  }, 120_000);
});
