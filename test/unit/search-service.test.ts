import { describe, expect, it } from "vitest";
import type { IndexManifest, SegmentRef } from "../../shared/domain/manifest.ts";
import { buildSegment, encodeSegment } from "../../shared/domain/segment.ts";
import { SearchService, searchRequest } from "../../shared/stages/search.ts";

/** One encoded single-chunk segment about `topic`. */
const segmentBytes = (id: string, topic: string) =>
  encodeSegment(
    buildSegment(
      id,
      [
        {
          chunkId: `${id}:0`,
          documentId: id,
          ordinal: 0,
          page: 1,
          start: 0,
          end: topic.length,
          text: topic,
          collection: "c",
          vector: [1, 0, 0, 0],
        },
      ],
      new Map([[id, { documentId: id, collection: "c", contentType: "text/plain" }]]),
    ),
  );

describe("SearchService segment cache", () => {
  it("fetches each segment once and forgets segments the manifest no longer lists", async () => {
    const blobs = new Map([
      ["a", segmentBytes("a", "glaciers carve valleys")],
      ["b", segmentBytes("b", "volcanoes erupt lava")],
      ["m", segmentBytes("m", "glaciers and volcanoes merged")],
    ]);
    const reads: string[] = [];
    const ref = (id: string): SegmentRef => ({ id, key: id, chunks: 1, bytes: 1, createdAt: "2026-01-01T00:00:00Z" });
    let manifest: IndexManifest = {
      tenant: "t",
      collection: "c",
      index: "1",
      version: 1,
      segments: [ref("a"), ref("b")],
      tombstones: [],
    };
    const service = new SearchService({
      manifests: { get: async () => manifest },
      blobs: {
        read: async (key) => {
          reads.push(key);
          return blobs.get(key) as Uint8Array;
        },
      },
      embed: async () => new Float32Array([1, 0, 0, 0]),
    });
    const search = (query: string) =>
      service.search("t", searchRequest.parse({ query, collection: "c", mode: "bm25" }));

    expect((await search("glaciers")).results.map((result) => result.documentId)).toEqual(["a"]);
    await search("volcanoes");
    expect(reads).toEqual(["a", "b"]);

    // Compaction merged a and b into m.
    manifest = { ...manifest, version: 2, segments: [ref("m")] };
    expect((await search("glaciers")).results.map((result) => result.documentId)).toEqual(["m"]);
    expect(reads).toEqual(["a", "b", "m"]);
    // Back to the old list: a and b were dropped from the cache, so they are fetched again.
    manifest = { ...manifest, version: 3, segments: [ref("a"), ref("b")] };
    await search("glaciers");
    expect(reads).toEqual(["a", "b", "m", "a", "b"]);
  });
});
