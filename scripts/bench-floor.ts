/**
 * The floor under ingestion on this machine: what the local servers and their clients alone cost
 * per document for the least any design of this platform must do, next to what embedding costs.
 *
 * Per document, on a fresh jobs table, bucket and topic of the running stack (`npm run stack:up`
 * starts it if needed), with no function, API or pipeline around them:
 * - DynamoDB: three writes through the job store's client: the job's creation, its chunk total
 *   (the move split makes) and one write that counts its chunks and completes it (today's index
 *   stage needs a transaction and a second write for that);
 * - S3: the document's PUT (the client's upload) and one GET (split reads it);
 * - Kafka: the three messages of its three hops (uploaded, chunk group, embedded group with its
 *   vectors), produced in requests of 100 and consumed back;
 * - embedding: its chunks (same chunker) through the embedder alone, one one-thread session per core.
 * Left out, so the floor is a lower bound: every Lambda invocation, the HTTP API, authentication,
 * logging and metrics, the upload check's read, the markers that count each batch once, index
 * segments and their manifests, compaction.
 *
 * With the platform running (`npm start`), POST /uploads is also timed alone, at `--concurrency`
 * clients and nothing else running (no PUT, so no pipeline), with the CPU each process spent per
 * request: the least an upload request costs here, and so the least latency that many clients see.
 *
 * The ceiling follows: with the cores saturated, documents/min ≤ cores × 60 s ÷ (embedding +
 * floor) CPU-s per document, and the pipeline's share of the embedder alone ≤ embedding ÷
 * (embedding + floor). `--json FILE` writes the figures.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { Command } from "commander";
import pMap from "p-map";
import { DataDistillerClient } from "../cli/api-client.ts";
import { ensureModels } from "../layers/models.ts";
import { createJobsTable } from "../localstack/platform/jobs-table.ts";
import { cdkOut } from "../localstack/platform/platform.ts";
import { mintToken } from "../localstack/platform/tokens.ts";
import { repoRoot } from "../localstack/servers/paths.ts";
import { readPid } from "../localstack/servers/process.ts";
import { stackUp } from "../localstack/servers/stack.ts";
import { dynamoDocumentClient, s3Client } from "../shared/adapters/aws-clients.ts";
import { JobStore } from "../shared/adapters/job-store.ts";
import { kafkaClient } from "../shared/adapters/kafka-publisher.ts";
import { documentSplitter } from "../shared/domain/document-splitter.ts";
import { encodeVector } from "../shared/domain/messages.ts";
import { modelPaths } from "../shared/ml/model-files.ts";
import { EMBEDDER_MAX_TOKENS, embedderTokenCounter, TextTokenizer } from "../shared/ml/tokenizer.ts";
import { beirDocuments } from "./beir.ts";
import { embedderThroughput } from "./embedder-throughput.ts";
import { cpuSpent, functionServices, platformCpu, processCpuMs } from "./process-cpu.ts";
import { percentiles } from "./retrieval-metrics.ts";

const options = new Command("bench:floor")
  .requiredOption("--dataset <dir>", "a BEIR-format dataset (corpus.jsonl)")
  .option("--limit <n>", "the first N documents", (value) => Number(value), 1000)
  .option("--endpoint <url>", "the API, when the platform runs", `http://127.0.0.1:${process.env.API_PORT ?? 3000}`)
  .option("--concurrency <n>", "clients asking POST /uploads at once", (value) => Number(value), 20)
  .option("--requests <n>", "POST /uploads requests (0: skip the API)", (value) => Number(value), 600)
  .option("--json <file>", "also write the figures as JSON")
  .parse()
  .opts<{ dataset: string; limit: number; endpoint: string; concurrency: number; requests: number; json?: string }>();

/** Requests in flight at once against each server (the pipeline's functions run a few at a time too). */
const CLIENTS = 8;
/** Messages per produce request: generous, as the stages publish a batch's messages together. */
const PRODUCE_BATCH = 100;
const VECTOR_DIMENSIONS = 384;

const load = () =>
  loadavg()
    .map((value) => value.toFixed(1))
    .join(" ");

interface Doc {
  id: string;
  text: string;
  chunks: string[];
}

async function readDocs(): Promise<Doc[]> {
  const models = modelPaths(await ensureModels());
  const split = documentSplitter(
    embedderTokenCounter(TextTokenizer.fromFile(models.embedder.tokenizer, EMBEDDER_MAX_TOKENS)),
  );
  const docs: Doc[] = [];
  for await (const { id, text } of beirDocuments(options.dataset)) {
    if (!text.trim()) continue;
    const chunks = await split(id, new TextEncoder().encode(text), "text/plain");
    docs.push({ id, text, chunks: chunks.map((chunk) => chunk.text) });
    if (docs.length >= options.limit) break;
  }
  if (docs.length === 0) throw new Error(`no document with text in ${options.dataset}/corpus.jsonl`);
  return docs;
}

/**
 * CPU milliseconds per document of one server (by its pid file) and of this process (its client)
 * while `work` runs. Nothing else of ours runs meanwhile; the machine's other load is printed.
 */
async function measure(server: "dynamodb" | "s3" | "kafka", documents: number, work: () => Promise<void>) {
  const pid = readPid(server);
  if (pid === undefined) {
    throw new Error(`no ${server} process of this checkout's stack to measure (one started elsewhere is not read)`);
  }
  const serverCpu = () => processCpuMs(pid);
  const [serverBefore, clientBefore] = [serverCpu(), process.cpuUsage()];
  await work();
  const client = process.cpuUsage(clientBefore);
  return {
    server: (serverCpu() - serverBefore) / documents,
    client: (client.user + client.system) / 1000 / documents,
  };
}

async function dynamodbFloor(docs: Doc[]) {
  const table = `floor-jobs-${Date.now().toString(36)}`;
  const dropTable = await createJobsTable(new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT }), table);
  const db = dynamoDocumentClient();
  const jobs = new JobStore(db, table);
  try {
    const ids = docs.map(() => randomUUID());
    await jobs.create(job(randomUUID(), "warm-up", 1), new Date());
    return await measure("dynamodb", docs.length, async () => {
      await pMap(
        docs,
        async (doc, i) => {
          const jobId = ids[i] as string;
          await jobs.create(job(jobId, doc.id, doc.text.length), new Date(Date.now() + 900_000));
          await jobs.advance(jobId, "EMBEDDING", { chunksTotal: doc.chunks.length });
          // Counted and completed in one write: what the index stage would need at the least.
          await db.send(
            new UpdateCommand({
              TableName: table,
              Key: { pk: `JOB#${jobId}`, sk: "JOB" },
              UpdateExpression: "ADD chunksIndexed :n SET #state = :done, #stages.#done = :now, updatedAt = :now",
              ConditionExpression: "#state = :embedding",
              ExpressionAttributeNames: { "#state": "state", "#stages": "stages", "#done": "COMPLETED" },
              ExpressionAttributeValues: {
                ":n": doc.chunks.length,
                ":done": "COMPLETED",
                ":embedding": "EMBEDDING",
                ":now": new Date().toISOString(),
              },
            }),
          );
        },
        { concurrency: CLIENTS },
      );
    });
  } finally {
    await dropTable().catch(() => {});
  }
}

const job = (jobId: string, documentId: string, size: number) => ({
  jobId,
  size,
  tenant: "floor",
  collection: "floor",
  documentId,
  filename: `${documentId}.txt`,
  contentType: "text/plain",
  metadata: {},
  objectKey: `uploads/floor/${jobId}/${documentId}.txt`,
});

async function s3Floor(docs: Doc[]) {
  const bucket = `floor-${Date.now().toString(36)}`;
  const s3 = s3Client();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const key = (doc: Doc) => `uploads/floor/${doc.id}.txt`;
  try {
    return await measure("s3", docs.length, async () => {
      await pMap(
        docs,
        async (doc) => {
          await s3.send(
            new PutObjectCommand({ Bucket: bucket, Key: key(doc), Body: doc.text, ContentType: "text/plain" }),
          );
          const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key(doc) }));
          await object.Body?.transformToByteArray();
        },
        { concurrency: CLIENTS },
      );
    });
  } finally {
    for (let start = 0; start < docs.length; start += 1000) {
      const Objects = docs.slice(start, start + 1000).map((doc) => ({ Key: key(doc) }));
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects } })).catch(() => {});
    }
    await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  }
}

/** Each document's three messages, of the sizes the stages publish (vectors as the embed stage encodes them). */
function messages(doc: Doc): string[] {
  const vector = encodeVector(new Float32Array(VECTOR_DIMENSIONS).fill(0.5));
  const document = { documentId: doc.id, collection: "floor", contentType: "text/plain", filename: `${doc.id}.txt` };
  const chunks = doc.chunks.map((text, index) => ({ chunkId: `${doc.id}#${index}`, index, text }));
  return [
    JSON.stringify({ jobId: doc.id, tenant: "floor", document, bucket: "uploads", key: doc.id, size: doc.text.length }),
    JSON.stringify({ jobId: doc.id, tenant: "floor", groupId: doc.id, document, chunks }),
    JSON.stringify({
      jobId: doc.id,
      tenant: "floor",
      groupId: doc.id,
      document,
      chunks,
      vectors: chunks.map(() => vector),
    }),
  ];
}

async function kafkaFloor(docs: Doc[]) {
  const kafka = kafkaClient({
    brokers: (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(","),
    saslMechanism: "none",
    region: process.env.AWS_REGION ?? "us-east-1",
    clientId: "bench-floor",
  });
  const topic = `floor-${Date.now().toString(36)}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await Promise.all([producer.connect(), consumer.connect()]);
  await consumer.subscribe({ topic, fromBeginning: true });
  const all = docs.flatMap(messages);
  let consumed = 0;
  let allConsumed: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allConsumed = resolve;
  });
  try {
    return await measure("kafka", docs.length, async () => {
      await consumer.run({
        eachBatch: async ({ batch }) => {
          consumed += batch.messages.length;
          if (consumed >= all.length) allConsumed();
        },
      });
      for (let start = 0; start < all.length; start += PRODUCE_BATCH) {
        const batch = all.slice(start, start + PRODUCE_BATCH).map((value, i) => ({ key: String(start + i), value }));
        await producer.send({ topic, acks: -1, messages: batch });
      }
      const stuck = setTimeout(() => allConsumed(), 120_000);
      await done;
      clearTimeout(stuck);
      if (consumed < all.length) throw new Error(`only ${consumed} of ${all.length} messages came back within 120 s`);
    });
  } finally {
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
}

/**
 * POST /uploads alone on the idle platform: latency percentiles after the first 2 × concurrency
 * (they start the API's environments) and CPU per request by role. Undefined when no API answers.
 */
async function uploadRequestFloor() {
  if (options.requests <= 0) return undefined;
  const token = await mintToken({ tenant: "bench-floor", audience: "datadistiller" });
  const api = new DataDistillerClient(options.endpoint, token);
  const ask = (i: number) =>
    api.requestUpload({ filename: `floor-${i}.txt`, contentType: "text/plain", size: 1000, collection: "bench-floor" });
  try {
    await ask(-1);
  } catch {
    console.log(`\n(no API at ${options.endpoint}: POST /uploads not measured; \`npm start\` runs it)`);
    return undefined;
  }
  const services = functionServices(cdkOut);
  const before = platformCpu(repoRoot, services);
  const benchBefore = process.cpuUsage();
  const latencies: number[] = [];
  await pMap(
    Array.from({ length: options.requests }, (_, i) => i),
    async (i) => {
      const asked = performance.now();
      await ask(i);
      latencies[i] = performance.now() - asked;
    },
    { concurrency: options.concurrency },
  );
  const bench = process.cpuUsage(benchBefore);
  const spent = cpuSpent(before, platformCpu(repoRoot, services));
  spent.set("bench-client", (bench.user + bench.system) / 1000);
  const cpuMsPerRequest = Object.fromEntries(
    [...spent].filter(([, cpuMs]) => cpuMs > 0).map(([role, cpuMs]) => [role, cpuMs / options.requests]),
  );
  return { latency: percentiles(latencies.slice(2 * options.concurrency)), cpuMsPerRequest };
}

const ms = (value: number) => `${value.toFixed(1).padStart(6)} ms`;

async function main() {
  await stackUp();
  const docs = await readDocs();
  const chunks = docs.reduce((sum, doc) => sum + doc.chunks.length, 0);
  const cores = availableParallelism();
  console.log(`bench:floor: ${docs.length} documents, ${chunks} chunks, ${cores} cores, load ${load()}`);

  const dynamodb = await dynamodbFloor(docs);
  const s3 = await s3Floor(docs);
  const kafka = await kafkaFloor(docs);
  const texts = docs.slice(0, 400).flatMap((doc) => doc.chunks);
  const perChunk =
    (cores * 1000) / (await embedderThroughput(await ensureModels(), texts, { sessions: cores, threads: 1 }));
  const embedMs = (perChunk * chunks) / docs.length;

  const parts = {
    dynamodb: dynamodb.server,
    dynamodbClient: dynamodb.client,
    s3: s3.server,
    s3Client: s3.client,
    kafka: kafka.server,
    kafkaClient: kafka.client,
  };
  const uploads = await uploadRequestFloor();
  const floorMs = Object.values(parts).reduce((sum, value) => sum + value, 0);
  const ceilingRatio = embedMs / (embedMs + floorMs);
  const ceilingDocumentsPerMinute = (cores * 60_000) / (embedMs + floorMs);
  console.log(`\nCPU per document (load ${load()}):`);
  console.log(`  embedding (${(chunks / docs.length).toFixed(2)} chunks)  ${ms(embedMs)}`);
  console.log(`  DynamoDB Local, 3 writes     ${ms(dynamodb.server)}   its client ${ms(dynamodb.client)}`);
  console.log(`  S3 server, PUT + GET         ${ms(s3.server)}   its client ${ms(s3.client)}`);
  console.log(`  Kafka, 3 messages            ${ms(kafka.server)}   its client ${ms(kafka.client)}`);
  console.log(`  floor (all but embedding)    ${ms(floorMs)}`);
  console.log(
    `\nceiling: ${(100 * ceilingRatio).toFixed(0)}% of the embedder alone, ` +
      `${ceilingDocumentsPerMinute.toFixed(0)} documents/min on ${cores} cores; ` +
      `85% would leave ${(embedMs / 0.85 - embedMs).toFixed(1)} ms per document for everything but embedding`,
  );
  if (uploads) {
    const { latency, cpuMsPerRequest } = uploads;
    const total = Object.values(cpuMsPerRequest).reduce((sum, value) => sum + value, 0);
    console.log(
      `\nPOST /uploads alone, ${options.concurrency} clients, nothing else running: p50 ${latency.p50.toFixed(0)} ms, ` +
        `p95 ${latency.p95.toFixed(0)}, p99 ${latency.p99.toFixed(0)}; CPU per request ${total.toFixed(1)} ms (` +
        Object.entries(cpuMsPerRequest)
          .sort((a, b) => b[1] - a[1])
          .map(([role, value]) => `${role} ${value.toFixed(1)}`)
          .join(", ") +
        `), so ${options.concurrency} clients on ${cores} cores wait ≥ ${((options.concurrency * total) / cores).toFixed(0)} ms per request on average`,
    );
  }
  if (options.json) {
    const round = (value: number) => Math.round(value * 100) / 100;
    writeFileSync(
      options.json,
      `${JSON.stringify(
        {
          documents: docs.length,
          chunks,
          cores,
          embedCpuMsPerDocument: round(embedMs),
          floorCpuMsPerDocument: Object.fromEntries(Object.entries(parts).map(([name, value]) => [name, round(value)])),
          floorTotalCpuMsPerDocument: round(floorMs),
          ceilingRatio: round(ceilingRatio),
          ceilingDocumentsPerMinute: Math.round(ceilingDocumentsPerMinute),
          uploadRequestAlone: uploads
            ? {
                concurrency: options.concurrency,
                ms: {
                  p50: round(uploads.latency.p50),
                  p95: round(uploads.latency.p95),
                  p99: round(uploads.latency.p99),
                },
                cpuMsPerRequest: Object.fromEntries(
                  Object.entries(uploads.cpuMsPerRequest).map(([role, value]) => [role, round(value)]),
                ),
              }
            : null,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`figures written to ${options.json}`);
  }
}

await main();
