import { describe, expect, it } from "vitest";
import { rng } from "../../scripts/seeded-random.ts";
import type { IndexManifest, SegmentRef } from "../../shared/domain/manifest.ts";
import { buildSegment, encodeSegment } from "../../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";
import {
  planShards,
  SearchService,
  SegmentCache,
  type ShardRequest,
  type ShardResponse,
  searchRequest,
  searchShard,
} from "../../shared/stages/search.ts";

const WORDS = [
  "protein",
  "cell",
  "gene",
  "tumor",
  "vitamin",
  "insulin",
  "neuron",
  "virus",
  "immune",
  "therapy",
  "dose",
];
const D = 8;

/** Segment `s` of the collection: `docs` documents × 3 chunks, plus `redelivered` chunks of another segment. */
function segmentBytes(
  s: number,
  docs: number,
  random: () => number,
  annMinChunks?: number,
  redelivered: { chunks: EmbeddedChunk[]; info: DocumentInfo } | undefined = undefined,
) {
  const infos = new Map<string, DocumentInfo>();
  const chunks: EmbeddedChunk[] = [];
  for (let d = 0; d < docs; d += 1) {
    const documentId = `s${s}d${d}`;
    infos.set(documentId, {
      documentId,
      collection: "c",
      contentType: d % 3 === 0 ? "application/pdf" : "text/plain",
      metadata: { year: 2000 + (d % 4) },
      revision: `job${s}`,
    });
    for (let o = 0; o < 3; o += 1) {
      const text = Array.from({ length: 12 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" ");
      const vector = Array.from({ length: D }, () => random() * 2 - 1);
      chunks.push({
        chunkId: `${documentId}:${o}`,
        documentId,
        ordinal: o,
        page: 1,
        start: 0,
        end: text.length,
        text,
        collection: "c",
        vector,
      });
    }
  }
  if (redelivered) {
    chunks.push(...redelivered.chunks);
    infos.set(redelivered.info.documentId, redelivered.info);
  }
  const createdAt = new Date(Date.UTC(2026, 0, 1 + s)).toISOString();
  const options = annMinChunks === undefined ? { createdAt } : { createdAt, annMinChunks };
  return {
    bytes: encodeSegment(buildSegment(`seg${s}`, chunks, infos, options)),
    first: { chunks: chunks.slice(0, 3), info: infos.get(`s${s}d0`) as DocumentInfo },
  };
}

describe("a collection searched as several shards", () => {
  // Seven segments of different sizes, one with an ANN index; the last re-delivers a document of the
  // second (identical chunks, newer segment).
  const random = rng(7);
  const blobs = new Map<string, Uint8Array>();
  const refs: SegmentRef[] = [];
  const sizes = [400, 40, 40, 120, 40, 10, 40];
  let second: { chunks: EmbeddedChunk[]; info: DocumentInfo } | undefined;
  sizes.forEach((docs, s) => {
    const { bytes, first } = segmentBytes(s, docs, random, s === 0 ? 1024 : undefined, s === 6 ? second : undefined);
    if (s === 1) second = first;
    blobs.set(`k${s}`, bytes);
    refs.push({
      id: `seg${s}`,
      key: `k${s}`,
      chunks: docs * 3 + (s === 6 ? 3 : 0),
      bytes: bytes.length,
      createdAt: new Date(Date.UTC(2026, 0, 1 + s)).toISOString(),
      format: 2,
    });
  });
  const manifest: IndexManifest = {
    tenant: "t",
    collection: "c",
    index: "1",
    version: 1,
    segments: refs,
    tombstones: ["s1d3@job1", "s3d5", "s0d17@job0"],
  };
  const read = async (key: string) => blobs.get(key) as Uint8Array;
  const embed = async (text: string) => {
    const r = rng(text.length * 31 + text.charCodeAt(0));
    return Float32Array.from({ length: D }, () => r() * 2 - 1);
  };
  const single = new SearchService({ manifests: { get: async () => manifest }, blobs: { read }, embed });
  // Three shard functions, each its own execution environment; requests and answers travel as JSON.
  const environments = [0, 1, 2].map(() => new SegmentCache({ read }));
  const invoked: number[] = [];
  const sharded = new SearchService({
    manifests: { get: async () => manifest },
    blobs: { read },
    embed,
    shards: {
      maxChunks: 400,
      invoke: async (shard: number, request: ShardRequest): Promise<ShardResponse> => {
        invoked.push(shard);
        const answer = await searchShard(JSON.parse(JSON.stringify(request)), environments[shard % 3] as SegmentCache);
        return JSON.parse(JSON.stringify(answer));
      },
    },
  });

  it("splits the segments into shards of whole segments, oldest first", () => {
    const shards = planShards(refs, 400);
    expect(shards.map((shard) => shard.map((ref) => ref.id))).toEqual([
      ["seg0"],
      ["seg1", "seg2"],
      ["seg3"],
      ["seg4", "seg5", "seg6"],
    ]);
    expect(planShards(refs, 10_000)).toHaveLength(1);
  });

  it("gets the same results as searching every segment in one process", async () => {
    const requests = [
      { query: "tumor immune therapy", mode: "hybrid" },
      { query: "vitamin dose insulin", mode: "bm25", k: 30 },
      { query: "gene neuron", mode: "dense", k: 25 },
      { query: "protein cell", mode: "hybrid", fusion: "weighted", k: 15 },
      { query: "virus", mode: "hybrid", filters: { contentTypes: ["application/pdf"], metadata: { year: 2001 } } },
      { query: "immune cell", mode: "hybrid", filters: { documentIds: ["s0d3", "s1d2", "s6d1", "s3d5"] } },
      { query: "therapy", mode: "bm25", k: 5 },
    ];
    for (const body of requests) {
      invoked.length = 0;
      const request = searchRequest.parse({ collection: "c", rerank: false, ...body });
      const one = await single.search("t", request);
      const many = await sharded.search("t", request);
      expect(invoked.sort()).toEqual([0, 1, 2, 3]);
      expect(many.shards).toBe(4);
      expect(one.results.length).toBeGreaterThan(0);
      expect(many.results).toEqual(one.results);
      // And the next page too.
      if (one.nextCursor) {
        const next = searchRequest.parse({ ...request, cursor: one.nextCursor });
        expect((await sharded.search("t", next)).results).toEqual((await single.search("t", next)).results);
      }
    }
  });

  it("answers a re-delivered chunk once, from the newest segment", async () => {
    const request = searchRequest.parse({
      query: "x",
      collection: "c",
      k: 100,
      rerank: false,
      mode: "hybrid",
      filters: { documentIds: ["s1d0"] },
    });
    const results = (await sharded.search("t", request)).results;
    expect(results.map((result) => result.chunkId).sort()).toEqual(["s1d0:0", "s1d0:1", "s1d0:2"]);
    expect(results).toEqual((await single.search("t", request)).results);
  });

  it("masks tombstoned documents in every shard", async () => {
    const request = searchRequest.parse({ query: "tumor gene cell protein", collection: "c", k: 100, rerank: false });
    const ids = (await sharded.search("t", request)).results.map((result) => result.documentId);
    expect(ids).not.toContain("s3d5");
    expect(ids).not.toContain("s1d3");
    expect(ids).not.toContain("s0d17");
  });
});
