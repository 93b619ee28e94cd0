import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobsTable } from "../../localstack/platform/jobs-table.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { SegmentFiles } from "../../shared/adapters/segment-files.ts";
import { type CompactionPolicy, nextMerge, tierOf } from "../../shared/domain/compaction-policy.ts";
import { FIRST_INDEX, LEGACY_MODEL_ID } from "../../shared/domain/manifest.ts";
import { encodeBatchSegment, readSegmentHeader, segmentRef } from "../../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";
import { compactCollection } from "../../shared/stages/compaction.ts";
import { segmentKey } from "../../shared/stages/indexing.ts";
import { SearchService, searchRequest } from "../../shared/stages/search.ts";
import { dynamoClient, s3Client, uniqueName } from "../support/clients.ts";

/** Segments of the first index, with the legacy model's (random test) vectors. */
const TARGET = { index: FIRST_INDEX, model: LEGACY_MODEL_ID };

const client = dynamoClient();
const s3 = s3Client();
const table = uniqueName("compaction");
const bucket = uniqueName("compaction");
const manifests = new ManifestStore(DynamoDBDocumentClient.from(client), table);
const objects = new ObjectStore(s3);
const files = new SegmentFiles(objects, bucket);
const blobs = {
  write: (key: string, body: Uint8Array | readonly Uint8Array[]) => objects.write(bucket, key, body),
  read: (key: string) => objects.read(bucket, key),
  source: (key: string, size: number) => files.source(key, size),
  delete: (key: string) => objects.delete(bucket, key),
};
let dropTable: () => Promise<void>;

beforeAll(async () => {
  dropTable = await createJobsTable(client, table);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(async () => {
  await dropTable();
  client.destroy();
  s3.destroy();
});

const WORDS = ["glacier", "volcano", "river", "desert", "forest", "canyon", "island", "meadow"];
let batches = 0;

/** Indexes one batch of `documents` documents × 2 chunks as the index stage does (segment + manifest). */
async function ingest(collection: string, documents: number, first: number, target = TARGET): Promise<string[]> {
  const docs = new Map<string, DocumentInfo>();
  const chunks: EmbeddedChunk[] = [];
  for (let d = first; d < first + documents; d += 1) {
    const documentId = `doc${d}`;
    docs.set(documentId, { documentId, collection, contentType: "text/plain", revision: `job${d}` });
    for (let o = 0; o < 2; o += 1) {
      const text = `${WORDS[d % WORDS.length]} ${WORDS[(d * 3 + o) % WORDS.length]} note ${d}`;
      const vector = [Math.cos(d + o), Math.sin(d + o), Math.cos(2 * d), Math.sin(3 * o + d)];
      chunks.push({
        chunkId: `${documentId}:${o}`,
        documentId,
        ordinal: o,
        page: 1,
        start: 0,
        end: text.length,
        text,
        collection,
        vector,
      });
    }
  }
  const id = `batch${batches++}`;
  const encoded = encodeBatchSegment(id, chunks, docs, { model: target.model });
  const key = segmentKey("acme", collection, id, target.index);
  await blobs.write(key, encoded.parts);
  await manifests.addSegment("acme", collection, segmentRef(encoded, key), target);
  return chunks.map((chunk) => chunk.chunkId);
}

const policy: CompactionPolicy = { factor: 4, floorChunks: 8, maxChunks: 256, rewriteMaskedShare: 0.3 };

describe("size-tiered compaction", () => {
  it("merges neighbours of one tier, bounded by the maximum segment size", () => {
    const sizes = (chunks: number[]) => chunks.map((n, i) => ({ id: `s${i}`, chunks: n, format: 2 }));
    expect(tierOf(7, policy)).toBe(0);
    expect(tierOf(8, policy)).toBe(1);
    expect(tierOf(32, policy)).toBe(2);
    expect(nextMerge(sizes([40, 40, 10, 10, 10]), policy)).toBeUndefined();
    expect(nextMerge(sizes([40, 10, 10, 10, 10]), policy)).toEqual(["s1", "s2", "s3", "s4"]);
    // Neighbours only: the tier-2 segment between them breaks the run.
    expect(nextMerge(sizes([10, 10, 40, 10, 10]), policy)).toBeUndefined();
    // Final segments (over half the maximum) are never merged; a merge never exceeds the maximum.
    expect(nextMerge(sizes([130, 130, 130, 130]), policy)).toBeUndefined();
    expect(nextMerge(sizes([100, 100, 100, 100]), policy)).toEqual(["s0", "s1"]);
    // Old-format segments are rewritten first; so are mostly masked ones.
    expect(nextMerge([{ id: "old", chunks: 50 }, ...sizes([10])], policy)).toEqual(["old"]);
    expect(nextMerge(sizes([100, 10]), policy, new Map([["s0", 40]]))).toEqual(["s0"]);
  });

  it("compacts a growing collection: every chunk still searchable, each rewritten a few times, tombstones dropped", async () => {
    const collection = "growing";
    const all: string[] = [];
    let rewritten = 0;
    for (let batch = 0; batch < 24; batch += 1) {
      all.push(...(await ingest(collection, 3, batch * 3)));
      if (batch === 10) {
        await manifests.addTombstone("acme", collection, "doc4@job4");
        await manifests.addTombstone("acme", collection, "doc5");
      }
      const result = await compactCollection("acme", collection, "test", {
        manifests,
        blobs,
        policy,
        retireAfterMs: 0,
        log: (_message, details) => {
          rewritten += (details.merged as { chunks: number }).chunks;
        },
      });
      expect(result.busy).toBe(false);
    }
    const manifest = await manifests.get("acme", collection);
    // Compact: no merge left, a handful of segments.
    expect(nextMerge(manifest.segments, policy)).toBeUndefined();
    expect(manifest.segments.length).toBeLessThan(8);
    // Each chunk rewritten at most once per tier: 3 tiers from 6-chunk batches to 256-chunk segments.
    expect(rewritten / all.length).toBeLessThanOrEqual(3);
    // Tombstoned revisions are gone from the segments, and so are their tombstones.
    expect(manifest.tombstones).toEqual([]);
    const service = new SearchService({
      manifests,
      blobs,
      embed: async () => new Float32Array([1, 0, 0, 0]),
    });
    const results: string[] = [];
    let cursor: string | undefined;
    do {
      const request = searchRequest.parse({
        query: "note",
        collection,
        k: 50,
        mode: "bm25",
        rerank: false,
        ...(cursor ? { cursor } : {}),
      });
      const page = await service.search("acme", request);
      results.push(...page.results.map((result) => result.chunkId));
      cursor = page.nextCursor;
    } while (cursor);
    const expected = all.filter((id) => !id.startsWith("doc4:") && !id.startsWith("doc5:"));
    expect(results.sort()).toEqual(expected.sort());
    // Objects of merged-away segments were deleted.
    const stored = (await objects.list(bucket, `index/acme/${collection}/`)).map((object) => object.key).sort();
    expect(stored).toEqual(manifest.segments.map((ref) => ref.key).sort());
  });

  it("compacts each index of a collection on its own: a merge never mixes two indexes (two models)", async () => {
    const collection = "two-indexes";
    const bge = { index: "2", model: "bge-small-en-v1.5-q" };
    await ingest(collection, 1, 500);
    await manifests.startMigration(
      "acme",
      collection,
      {
        id: "mig-1",
        jobId: "mig-1",
        from: FIRST_INDEX,
        to: bge.index,
        fromModel: TARGET.model,
        model: bge.model,
        state: "RUNNING",
        startedAt: new Date().toISOString(),
      },
      [],
    );
    for (let batch = 1; batch < 4; batch += 1) await ingest(collection, 1, 500 + batch);
    for (let batch = 0; batch < 4; batch += 1) await ingest(collection, 1, 500 + batch, bge);
    const result = await compactCollection("acme", collection, "test", { manifests, blobs, policy });
    expect(result.merges).toBe(2);
    for (const target of [TARGET, bge]) {
      const manifest = await manifests.get("acme", collection, target.index);
      expect(manifest.model).toBe(target.model);
      expect(manifest.segments).toHaveLength(1);
      const [ref] = manifest.segments;
      expect(ref?.chunks).toBe(8);
      expect(ref?.key).toBe(segmentKey("acme", collection, ref?.id ?? "", target.index));
      const header = readSegmentHeader(await objects.read(bucket, ref?.key ?? ""));
      expect(header.model).toBe(target.model);
    }
    // Merged-away objects are deleted once retired, except the old index's while the migration
    // runs (its fan-out may still read them).
    await compactCollection("acme", collection, "test", { manifests, blobs, policy, retireAfterMs: -1 });
    const stored = async (index: string) =>
      (await objects.list(bucket, segmentKey("acme", collection, "", index).replace(/\.seg$/, ""))).length;
    expect(await stored(FIRST_INDEX)).toBe(5);
    expect(await stored(bge.index)).toBe(1);
  });

  it("lets one compaction run at a time and leaves segments added meanwhile alone", async () => {
    const collection = "busy";
    for (let batch = 0; batch < 4; batch += 1) await ingest(collection, 2, 100 + batch * 2);
    expect(await manifests.tryLease("acme", collection, "other", 60)).toBe(true);
    const blocked = await compactCollection("acme", collection, "test", { manifests, blobs, policy });
    expect(blocked).toMatchObject({ busy: true, merges: 0 });
    await manifests.releaseLease("acme", collection, "other");
    // A segment written while the merge runs stays listed beside the merged one.
    let added = false;
    const racing = {
      ...blobs,
      write: async (key: string, body: Uint8Array | readonly Uint8Array[]) => {
        await blobs.write(key, body);
        if (!added) {
          added = true;
          await ingest(collection, 1, 200);
        }
      },
    };
    const result = await compactCollection("acme", collection, "test", { manifests, blobs: racing, policy });
    expect(result.merges).toBe(1);
    const manifest = await manifests.get("acme", collection);
    expect(manifest.segments.map((ref) => ref.chunks).sort((a, b) => a - b)).toEqual([2, 16]);
  });
  it("never merges a segment holding a pending revision, nor lets it hide the shown revision", async () => {
    const collection = "pending";
    /** One batch: `report` at `revision` (chunk report:0, as every upload of it has), plus filler documents. */
    const batch = async (revision: string, fillers: number[], reveal: boolean) => {
      const docs = new Map<string, DocumentInfo>();
      const chunks: EmbeddedChunk[] = [];
      const add = (documentId: string, rev: string, text: string, vector: number[]) => {
        docs.set(documentId, { documentId, collection, contentType: "text/plain", revision: rev });
        chunks.push({
          chunkId: `${documentId}:0`,
          documentId,
          ordinal: 0,
          page: 1,
          start: 0,
          end: text.length,
          text,
          collection,
          vector,
        });
      };
      if (revision) add("report", revision, `quarterly report ${revision}`, [1, 0, 0, 0]);
      for (const f of fillers) add(`filler${f}`, `job-f${f}`, `filler note ${f}`, [0, Math.cos(f), Math.sin(f), 0]);
      const id = `batch${batches++}`;
      const encoded = encodeBatchSegment(id, chunks, docs, { model: TARGET.model });
      const key = segmentKey("acme", collection, id);
      await blobs.write(key, encoded.parts);
      const revisions = [...docs.values()].map((info) => `${info.documentId}@${info.revision}`);
      const ref = segmentRef(encoded, key);
      await manifests.addSegment("acme", collection, ref, TARGET, revisions);
      for (const revision of revisions) {
        if (reveal || !revision.startsWith("report@")) await manifests.revealRevisions("acme", collection, [revision]);
      }
      return id;
    };
    const small: CompactionPolicy = { factor: 2, floorChunks: 64, maxChunks: 256, rewriteMaskedShare: 0.3 };
    await batch("old", [0], true);
    await batch("", [1], true);
    // A newer upload of report, half indexed, then FAILED: its revision stays pending.
    const failed = await batch("new", [2], false);
    await batch("", [3], true);
    await batch("", [4], true);
    const result = await compactCollection("acme", collection, "test", {
      manifests,
      blobs,
      policy: small,
      retireAfterMs: 0,
    });
    expect(result.merges).toBeGreaterThan(0);
    const manifest = await manifests.get("acme", collection);
    expect(manifest.pending).toEqual(["report@new"]);
    // Merged on either side of it, never across it.
    expect(manifest.segments.map((ref) => ref.id)).toContain(failed);
    expect(manifest.segments.length).toBe(3);
    const service = new SearchService({ manifests, blobs, embed: async () => new Float32Array([1, 0, 0, 0]) });
    for (const mode of ["bm25", "dense", "hybrid"] as const) {
      const page = await service.search(
        "acme",
        searchRequest.parse({ query: "quarterly report", collection, k: 10, mode, rerank: false }),
      );
      const report = page.results.filter((hit) => hit.documentId === "report");
      expect(report.map((hit) => hit.text)).toEqual(["quarterly report old"]);
    }
  });
});
