/**
 * Search at scale through the local platform, from the synthesized template: a collection spread over
 * several segments and shards (SHARD_MAX_CHUNKS lowered so a few documents make several shards, each
 * searched by a search-shard function through the local Lambda Invoke API), compacted by the compaction
 * function the index function hands it to, while searches keep running.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataDistillerClient } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { type SearchResponse, searchRequest } from "../../shared/api/schemas.ts";
import { planShards, SearchService } from "../../shared/stages/search.ts";
import { makeUtf8Text } from "../fixtures/make-fixtures.ts";
import { startTestPlatform, tenantClient } from "../support/platform.ts";

/** Chunks per shard: with one-chunk documents, every few documents are a shard of their own. */
const SHARD_MAX_CHUNKS = 3;
const WAVES = 6;
const PER_WAVE = 3;
const COLLECTION = "scale";

let platform: Platform;
let api: DataDistillerClient;
let tenant: string;
const logs: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line), {
    functionEnv: { SHARD_MAX_CHUNKS: String(SHARD_MAX_CHUNKS) },
  });
  ({ client: api, tenant } = await tenantClient(platform, "scale"));
}, 600_000);

afterAll(async () => {
  await platform?.stop();
});

const findName = (prefix: string) => {
  for (const [logicalId, name] of platform.runtime.names) if (logicalId.startsWith(prefix)) return name;
  throw new Error(`no resource named ${prefix}* in the template`);
};

const manifests = () =>
  new ManifestStore(
    DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: platform.env.DYNAMODB_ENDPOINT })),
    findName("StorageJobs"),
  );

/** A word no other document has (letters only, so the BM25 analyser keeps it whole). */
const marker = (i: number) => `quor${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + ((i * 7) % 26))}zel`;
const documentText = (i: number) =>
  `Lighthouse keeper log ${marker(i)}: the lamp was trimmed at dusk and the foghorn sounded twice before dawn.`;

describe("a collection over several segments and shards, compacted while it is searched", () => {
  const documents = new Map<string, number>();
  const completed = new Set<string>();
  const responses: SearchResponse[] = [];
  const problems: string[] = [];
  let searches = 0;

  beforeAll(async () => {
    let ingesting = true;
    // Searches run all along: every document whose job completed before a search was sent must be in its
    // results, and no chunk may come back twice, whatever compaction is doing.
    const searching = (async () => {
      while (ingesting) {
        const before = new Set(completed);
        const response = await api.search({
          query: "lighthouse foghorn",
          collection: COLLECTION,
          mode: "bm25",
          k: 100,
          rerank: false,
        });
        searches += 1;
        responses.push(response);
        const chunkIds = response.results.map((result) => result.chunkId);
        if (new Set(chunkIds).size !== chunkIds.length) problems.push(`duplicated chunks: ${chunkIds.join(",")}`);
        const found = new Set(response.results.map((result) => result.documentId));
        for (const documentId of before) if (!found.has(documentId)) problems.push(`lost ${documentId}`);
      }
    })();
    try {
      for (let wave = 0; wave < WAVES; wave += 1) {
        const tickets = await Promise.all(
          Array.from({ length: PER_WAVE }, async (_, j) => {
            const i = wave * PER_WAVE + j;
            const ticket = await api.ingest(
              { filename: `log-${i}.txt`, contentType: "text/plain", bytes: makeUtf8Text(documentText(i)) },
              { collection: COLLECTION },
            );
            documents.set(ticket.documentId, i);
            return ticket;
          }),
        );
        for (const ticket of tickets) {
          expect((await api.waitForJob(ticket.jobId, { timeoutMs: 120_000 })).state).toBe("COMPLETED");
          completed.add(ticket.documentId);
        }
      }
      // Compaction runs after the batches that ask for it: keep searching until it has merged.
      const deadline = Date.now() + 120_000;
      while ((await manifests().get(tenant, COLLECTION)).segments.length >= 4 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } finally {
      ingesting = false;
      await searching;
    }
  }, 900_000);

  it("loses and duplicates nothing while compaction merges segments under running searches", async () => {
    expect(problems).toEqual([]);
    expect(searches).toBeGreaterThan(WAVES);
    // Compaction did run: fewer live segments than index batches wrote (at least one per wave).
    const manifest = await manifests().get(tenant, COLLECTION);
    expect(manifest.segments.length).toBeLessThan(4);
    expect(manifest.segments.reduce((sum, ref) => sum + ref.chunks, 0)).toBe(WAVES * PER_WAVE);
    const last = await api.search({
      query: "lighthouse foghorn",
      collection: COLLECTION,
      mode: "bm25",
      k: 100,
      rerank: false,
    });
    expect(new Set(last.results.map((result) => result.documentId))).toEqual(new Set(documents.keys()));
  });

  it("searched the collection as several shards, through the shard functions", () => {
    const sharded = responses.filter((response) => (response.shards ?? 1) > 1);
    expect(sharded.length).toBeGreaterThan(0);
    expect(Math.max(...sharded.map((response) => response.shards ?? 0))).toBeGreaterThanOrEqual(3);
  });

  it("answers as one process searching every segment would (scores included)", async () => {
    const objects = new ObjectStore(new S3Client({ endpoint: platform.env.S3_ENDPOINT, forcePathStyle: true }));
    const bucket = findName("StorageIndex");
    const local = new SearchService({
      manifests: manifests(),
      blobs: { read: (key) => objects.read(bucket, key) },
      embed: async () => {
        throw new Error("bm25 needs no embedding");
      },
    });
    const manifest = await manifests().get(tenant, COLLECTION);
    const shards = planShards(manifest.segments, SHARD_MAX_CHUNKS).length;
    for (const query of ["lighthouse foghorn", `${marker(4)} lamp`, `dawn ${marker(11)} ${marker(15)}`]) {
      const request = searchRequest.parse({ query, collection: COLLECTION, mode: "bm25", k: 10, rerank: false });
      const [viaApi, inProcess] = await Promise.all([api.search(request), local.search(tenant, request)]);
      // The API fans out over the live segments' shards (one shard: searched in the search function).
      expect(viaApi.shards ?? 1).toBe(shards);
      expect(inProcess.shards).toBeUndefined();
      const view = (response: SearchResponse) =>
        response.results.map((result) => [result.chunkId, Math.round(result.score * 1e6)]);
      expect(view(viaApi), query).toEqual(view(inProcess));
    }
  });

  it("finds each document by its own word, first, in hybrid search over the shards", async () => {
    for (const [documentId, i] of [...documents].filter((_, n) => n % 5 === 0)) {
      // Only its own document has the word: first whatever the dense ranks (RRF adds a BM25 rank only it has).
      const { results } = await api.search({ query: marker(i), collection: COLLECTION, k: 3, rerank: false });
      expect(results[0]?.documentId, marker(i)).toBe(documentId);
    }
  });
});
