/**
 * The platform end to end, from the synthesized template, on real Kafka, S3 and DynamoDB Local:
 * uploads through the API and presigned uploads, the Kafka pipeline, job accounting, failures,
 * redelivery and search.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from "vitest";
import { ApiError, DataDistillerClient, type JobStatus, uploadFile } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { mintToken } from "../../localstack/platform/tokens.ts";
import { repoRoot } from "../../localstack/servers/paths.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { decodeSegment } from "../../shared/domain/segment.ts";
import {
  makeCorruptPdf,
  makeHtml,
  makeMarkdown,
  makePdf,
  makeProsePages,
  makeUtf8Text,
  PNG_1x1,
} from "../fixtures/make-fixtures.ts";
import { startTestPlatform } from "../support/platform.ts";

let platform: Platform;
let api: DataDistillerClient;
let otherTenant: DataDistillerClient;
const tenant = `e2e-${Date.now().toString(36)}`;

const logs: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line));
  api = new DataDistillerClient(platform.runtime.apiUrl, await mintToken({ tenant, audience: "datadistiller" }));
  otherTenant = new DataDistillerClient(
    platform.runtime.apiUrl,
    await mintToken({ tenant: `${tenant}-other`, audience: "datadistiller" }),
  );
}, 600_000);

afterAll(async () => {
  await platform?.stop();
  mkdirSync(join(repoRoot, "test-results"), { recursive: true });
  writeFileSync(join(repoRoot, "test-results/platform-e2e.log"), `${logs.join("\n")}\n`);
});

/** On a failure: the collection's manifest (what search hides) and the jobs, printed with the test. */
async function explainSearch(collection: string, jobIds: string[]) {
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: platform.env.DYNAMODB_ENDPOINT }));
  const manifest = await new ManifestStore(db, findName("StorageJobs")).get(tenant, collection);
  const jobs = await Promise.all(jobIds.map((jobId) => api.job(jobId).catch((error) => String(error))));
  console.error(
    `manifest ${tenant}/${collection}: ${JSON.stringify({ ...manifest, segments: manifest.segments.map((s) => s.id) })}\njobs: ${JSON.stringify(jobs)}`,
  );
}

/** The local name of a template resource, by the start of its logical id. */
const findName = (prefix: string) => {
  for (const [logicalId, name] of platform.runtime.names) if (logicalId.startsWith(prefix)) return name;
  throw new Error(`no resource named ${prefix}* in the template`);
};

/** Twenty documents of every supported kind; several PDFs with many pages. */
function corpus() {
  const docs: { filename: string; contentType: string; bytes: Uint8Array }[] = [];
  for (let i = 0; i < 5; i++) {
    docs.push({
      filename: `report-${i}.pdf`,
      contentType: "application/pdf",
      bytes: makePdf(makeProsePages(8 + i * 8, 16)),
    });
  }
  for (let i = 0; i < 5; i++) {
    docs.push({
      filename: `guide-${i}.md`,
      contentType: "text/markdown",
      bytes: makeMarkdown(
        `# Guide ${i}\n\n${makeProsePages(2, 8).join("\n\n")}\n\nSee [the manual](https://example.com).`,
      ),
    });
  }
  for (let i = 0; i < 5; i++) {
    docs.push({
      filename: `page-${i}.html`,
      contentType: "text/html",
      bytes: makeHtml(
        `<html><head><script>var hidden = 1;</script></head><body><h1>Page ${i}</h1><p>${makeProsePages(1, 10).join("</p><p>")}</p></body></html>`,
      ),
    });
  }
  for (let i = 0; i < 5; i++) {
    docs.push({
      filename: `notes-${i}.txt`,
      contentType: "text/plain",
      bytes: makeUtf8Text(makeProsePages(2, 9).join("\n\n")),
    });
  }
  return docs;
}

describe("ingestion pipeline", () => {
  const completed: JobStatus[] = [];

  it("ingests 20 mixed documents: every job COMPLETED with exact counts, every chunk indexed once", async () => {
    const began = Date.now();
    const tickets = await Promise.all(corpus().map((file) => api.ingest(file)));
    expect(new Set(tickets.map((ticket) => ticket.jobId)).size).toBe(20);
    const jobs = await Promise.all(
      tickets.map((ticket) => api.waitForJob(ticket.jobId, { timeoutMs: 480_000, intervalMs: 500 })),
    );
    const seconds = (Date.now() - began) / 1000;
    console.log(`20 documents ingested end to end in ${seconds.toFixed(1)} s`);

    for (const job of jobs) {
      expect(job, `${job.filename}: ${job.error ?? ""}`).toMatchObject({ state: "COMPLETED" });
      expect(job.counts.chunksTotal).toBeGreaterThan(0);
      expect(job.counts.chunksEmbedded).toBe(job.counts.chunksTotal);
      expect(job.counts.chunksIndexed).toBe(job.counts.chunksTotal);
      expect(job.percentages.indexed).toBe(100);
      for (const stage of ["PENDING_UPLOAD", "UPLOADED", "SPLITTING", "EMBEDDING", "INDEXING", "COMPLETED"] as const) {
        expect(job.stages[stage], `${job.filename} ${stage}`).toBeTruthy();
      }
      completed.push(job);
    }
    // The long PDFs fanned out into several groups of 16 chunks.
    expect(Math.max(...jobs.map((job) => job.counts.chunksTotal))).toBeGreaterThan(48);

    // The index holds every chunk exactly once.
    const stored = await indexedChunkIds("default");
    const total = jobs.reduce((sum, job) => sum + job.counts.chunksTotal, 0);
    expect(stored.length).toBe(total);
    expect(new Set(stored).size).toBe(total);
  }, 600_000);

  it("adds nothing when a batch is delivered again", async () => {
    const before = await Promise.all(completed.map((job) => api.job(job.jobId)));
    const chunksBefore = (await indexedChunkIds("default")).length;
    // Replay every message of chunks.embedded and chunks.to-embed onto their topics.
    await replayTopic("chunks.to-embed");
    await replayTopic("chunks.embedded");
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    const after = await Promise.all(completed.map((job) => api.job(job.jobId)));
    expect(after.map((job) => job.counts)).toEqual(before.map((job) => job.counts));
    expect((await indexedChunkIds("default")).length).toBe(chunksBefore);
  }, 120_000);
});

describe("fault tolerance", () => {
  it("counts exactly once when an embed worker is killed in the middle of a batch", async () => {
    const embed = [...platform.runtime.hosts.values()].find((host) => /embed/i.test(host.definition.name));
    expect(embed, "the embed function runs").toBeDefined();
    const ticket = await api.ingest(
      { filename: "long-report.pdf", contentType: "application/pdf", bytes: makePdf(makeProsePages(60, 16)) },
      { collection: "faults" },
    );
    // Once its groups are on chunks.to-embed, kill every embed execution environment mid-batch.
    let killed = 0;
    await api.waitForJob(ticket.jobId, {
      timeoutMs: 300_000,
      intervalMs: 100,
      onProgress: (job) => {
        if (killed === 0 && job.state === "EMBEDDING" && job.counts.chunksEmbedded < job.counts.chunksTotal) {
          for (const pid of embed?.pids() ?? []) {
            process.kill(pid, "SIGKILL");
            killed++;
          }
        }
      },
    });
    const job = await api.job(ticket.jobId);
    expect(killed).toBeGreaterThan(0);
    expect(job.state).toBe("COMPLETED");
    expect(job.counts.chunksEmbedded).toBe(job.counts.chunksTotal);
    expect(job.counts.chunksIndexed).toBe(job.counts.chunksTotal);
    const stored = await indexedChunkIds("faults");
    expect(stored.length).toBe(job.counts.chunksTotal);
    expect(new Set(stored).size).toBe(job.counts.chunksTotal);
  }, 360_000);
});

describe("bad input", () => {
  it("fails a corrupt PDF with a clear reason, and other documents are unaffected", async () => {
    const corrupt = await api.ingest({
      filename: "broken.pdf",
      contentType: "application/pdf",
      bytes: makeCorruptPdf("garbage"),
    });
    const fine = await api.ingest({
      filename: "fine.txt",
      contentType: "text/plain",
      bytes: makeUtf8Text("A perfectly fine note about glaciers and ice ages."),
    });
    const [bad, good] = await Promise.all([
      api.waitForJob(corrupt.jobId, { timeoutMs: 120_000 }),
      api.waitForJob(fine.jobId, { timeoutMs: 120_000 }),
    ]);
    expect(bad.state).toBe("FAILED");
    expect(bad.error).toMatch(/PDF|damaged|corrupt/i);
    expect(good.state).toBe("COMPLETED");
  }, 180_000);

  it("fails an upload whose bytes are not of the declared type", async () => {
    const ticket = await api.ingest({ filename: "photo.pdf", contentType: "application/pdf", bytes: PNG_1x1 });
    const job = await api.waitForJob(ticket.jobId, { timeoutMs: 60_000 });
    expect(job).toMatchObject({ state: "FAILED" });
    expect(job.error).toMatch(/declared type|PNG/i);
  }, 90_000);

  it("rejects an oversized upload: at the API when declared, at S3 when the file is bigger than declared", async () => {
    const tooBig = api.requestUpload({ filename: "huge.pdf", contentType: "application/pdf", size: 10 * 1024 ** 3 });
    await expect(tooBig).rejects.toMatchObject({ status: 413 });
    const ticket = await api.requestUpload({ filename: "liar.txt", contentType: "text/plain", size: 10 });
    await expect(uploadFile(ticket.upload, makeUtf8Text("x".repeat(5000)), "text/plain")).rejects.toBeInstanceOf(
      ApiError,
    );
    expect((await api.job(ticket.jobId)).state).toBe("PENDING_UPLOAD");
  });

  it("answers 400 with a JSON error naming the problem", async () => {
    const error = await api
      .requestUpload({ filename: "", contentType: "text/plain", size: -1 })
      .catch((e: ApiError) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect(JSON.stringify((error as ApiError).body)).toMatch(/filename/);
    await expect(
      api.requestUpload({ filename: "a.exe", contentType: "application/x-msdownload", size: 10 }),
    ).rejects.toMatchObject({
      status: 415,
    });
    await expect(api.search({ query: "   " })).rejects.toMatchObject({ status: 400 });
    await expect(api.search({ query: "x".repeat(5000) })).rejects.toMatchObject({ status: 400 });
  });

  it("keeps jobs private to their tenant, and lists each tenant's own, newest first", async () => {
    const ticket = await api.requestUpload({ filename: "mine.txt", contentType: "text/plain", size: 5 });
    await expect(otherTenant.job(ticket.jobId)).rejects.toMatchObject({ status: 404 });
    // The listing index is eventually consistent: the new job shows up within moments.
    await expect
      .poll(async () => (await api.listJobs({ limit: 1 })).jobs[0]?.jobId, { timeout: 10_000 })
      .toBe(ticket.jobId);
    const page = await api.listJobs({ limit: 2 });
    expect(page.jobs).toHaveLength(2);
    expect(page.cursor).toBeTypeOf("string");
    const next = await api.listJobs({ limit: 2, cursor: page.cursor });
    expect(next.jobs.map((job) => job.jobId)).not.toContain(page.jobs[0]?.jobId);
    expect((await otherTenant.listJobs()).jobs.map((job) => job.jobId)).not.toContain(ticket.jobId);
    await expect(otherTenant.listJobs({ cursor: page.cursor })).rejects.toMatchObject({ status: 400 });
    await expect(api.listJobs({ limit: 1000 })).rejects.toMatchObject({ status: 400 });
  });
});

describe("search", () => {
  const topics = {
    volcano:
      "Volcanic eruptions happen when magma rises through the crust. Lava flows and ash clouds follow the eruption, and pyroclastic flows can bury nearby towns.",
    bread:
      "To bake sourdough bread, feed the starter, mix flour and water, let the dough ferment overnight, then shape the loaf and bake it in a hot Dutch oven.",
    football:
      "The striker scored twice in the second half, and the goalkeeper saved a penalty, so the home team won the championship final three goals to one.",
    contract:
      "The lease agreement names the tenant and the landlord, sets the monthly rent, and says the deposit is returned within thirty days after the contract ends. Clause QX-7741 covers pets.",
  } as const;
  const ids: Record<string, string> = {};
  const jobIds: string[] = [];
  beforeEach(() => {
    onTestFailed(() => explainSearch("search", jobIds));
  });

  beforeAll(async () => {
    const tickets = await Promise.all(
      Object.entries(topics).map(async ([name, text]) => {
        const ticket = await api.ingest(
          { filename: `${name}.txt`, contentType: "text/plain", bytes: makeUtf8Text(text) },
          { collection: "search", metadata: { topic: name } },
        );
        ids[name] = ticket.documentId;
        jobIds.push(ticket.jobId);
        return ticket;
      }),
    );
    for (const ticket of tickets)
      expect((await api.waitForJob(ticket.jobId, { timeoutMs: 120_000 })).state).toBe("COMPLETED");
  }, 180_000);

  it("finds the right document first for paraphrased questions (dense meaning, not shared words)", async () => {
    const cases: [string, string][] = [
      ["what happens when a mountain explodes and molten rock comes out", "volcano"],
      ["how do I make a loaf at home with a fermented culture", "bread"],
      ["who won the big soccer match", "football"],
      ["when do I get my security money back after moving out of the apartment", "contract"],
    ];
    for (const [query, expected] of cases) {
      const { results, timings } = await api.search({ query, collection: "search", k: 3 });
      expect(results[0]?.documentId, query).toBe(ids[expected]);
      expect(results[0]?.scores.dense).toBeGreaterThan(0);
      expect(timings.total).toBeGreaterThan(0);
    }
  });

  it("finds an exact keyword, with the term highlighted, page and offsets", async () => {
    const { results } = await api.search({ query: "QX-7741", collection: "search", mode: "bm25" });
    expect(results[0]?.documentId).toBe(ids.contract);
    expect(results[0]?.highlights).toContain("<mark>");
    expect(results[0]).toMatchObject({ page: 1, start: 0 });
    const hybrid = await api.search({ query: "clause QX-7741 pets", collection: "search" });
    expect(hybrid.results[0]?.documentId).toBe(ids.contract);
  });

  it("filters by document and by metadata", async () => {
    const { results } = await api.search({
      query: "eruption",
      collection: "search",
      filters: { metadata: { topic: "bread" } },
    });
    expect(results.every((result) => result.documentId === ids.bread)).toBe(true);
    const byId = await api.search({
      query: "eruption",
      collection: "search",
      filters: { documentIds: [ids.football as string] },
    });
    expect(byId.results.map((result) => result.documentId)).toEqual([ids.football]);
  });

  it("never shows one tenant another tenant's documents", async () => {
    const { results } = await otherTenant.search({ query: "volcanic eruption lava", collection: "search" });
    expect(results).toEqual([]);
  });

  it("stops showing a deleted document", async () => {
    const before = await api.search({ query: "sourdough starter", collection: "search" });
    expect(before.results[0]?.documentId).toBe(ids.bread);
    await expect(otherTenant.deleteDocument(ids.bread as string)).rejects.toMatchObject({ status: 404 });
    await api.deleteDocument(ids.bread as string);
    const after = await api.search({ query: "sourdough starter", collection: "search" });
    expect(after.results.map((result) => result.documentId)).not.toContain(ids.bread);
  });

  it("replaces a document when the same file is uploaded again", async () => {
    const ticket = await api.ingest(
      {
        filename: "volcano.txt",
        contentType: "text/plain",
        bytes: makeUtf8Text("Glaciers are slow rivers of ice that carve valleys."),
      },
      { collection: "search" },
    );
    expect(ticket.documentId).toBe(ids.volcano);
    jobIds.push(ticket.jobId);
    expect((await api.waitForJob(ticket.jobId, { timeoutMs: 120_000 })).state).toBe("COMPLETED");
    const { results } = await api.search({ query: "magma lava ash eruption", collection: "search", mode: "bm25" });
    expect(results.map((result) => result.documentId)).not.toContain(ids.volcano);
    const glacier = await api.search({ query: "glaciers carve valleys", collection: "search", mode: "bm25" });
    expect(glacier.results[0]?.documentId).toBe(ids.volcano);
  });
});

/** Every chunk id held by the collection's live segments, duplicates included. */
async function indexedChunkIds(collection: string): Promise<string[]> {
  const env = platform.env;
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: env.DYNAMODB_ENDPOINT }));
  const manifest = await new ManifestStore(db, findName("StorageJobs")).get(tenant, collection);
  const objects = new ObjectStore(new S3Client({ endpoint: env.S3_ENDPOINT, forcePathStyle: true }));
  const bucket = findName("StorageIndex");
  const ids: string[] = [];
  for (const ref of manifest.segments) {
    const segment = decodeSegment(await objects.read(bucket, ref.key));
    for (let ordinal = 0; ordinal < segment.size; ordinal += 1) ids.push(segment.chunkIds.id(ordinal));
  }
  return ids;
}

/** Publishes every message of a topic a second time (a full redelivery of everything). */
async function replayTopic(topic: string): Promise<void> {
  const kafka = new Kafka({ brokers: platform.env.KAFKA_BROKERS?.split(",") ?? [], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0);
  const consumer = kafka.consumer({ groupId: `replay-${Date.now()}` });
  const producer = kafka.producer();
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message, partition }) => {
        await producer.send({ topic, messages: [{ key: message.key, value: message.value, partition }] });
        if (++seen >= total) resolve();
      },
    });
  });
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
}
