import { describe, expect, it } from "vitest";
import { rng } from "../../scripts/seeded-random.ts";
import { ivfPqShape, parseFaissIvfPq, searchIvfPq, trainFaissIvfPq } from "../../shared/domain/ann.ts";
import { searchSegments } from "../../shared/domain/hybrid-search.ts";
import {
  type ByteRange,
  buildSegment,
  decodeSegment,
  encodeSegment,
  memorySource,
  mergeSegments,
  Segment,
} from "../../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";
import { normalizeInto } from "../../shared/domain/vector-index.ts";

/** n unit vectors around 40 cluster centres (so an inverted file has structure to use). */
function clustered(n: number, d: number, seed: number): Float32Array {
  const random = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const centres = Array.from({ length: 40 }, () => Array.from({ length: d }, gauss));
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i += 1) {
    const centre = centres[i % centres.length] as number[];
    const row = centre.map((x) => x + 0.8 * gauss());
    normalizeInto(row, out, i * d);
  }
  return out;
}

describe("IVF-PQ (faiss-trained, searched over typed arrays)", () => {
  it("scores exactly as faiss does: the same neighbours and distances with one list probed", () => {
    const d = 32;
    const vectors = clustered(3000, d, 1);
    const faiss = trainFaissIvfPq(vectors, d, { nlist: 16, m: 4 });
    const index = parseFaissIvfPq(faiss.toBuffer(), 3000);
    expect(index).toMatchObject({ dimension: d, nlist: 16, m: 4 });
    expect(index.listOffsets[16]).toBe(3000);
    expect(new Set(index.listIds).size).toBe(3000);
    const queries = clustered(20, d, 2);
    for (let q = 0; q < 20; q += 1) {
      const query = queries.subarray(q * d, (q + 1) * d);
      // faiss searches one list by default (nprobe = 1).
      const expected = faiss.search(Array.from(query), 10);
      const hits = searchIvfPq(index, query, 10, { nprobe: 1 });
      expect(hits.map((hit) => hit.ordinal)).toEqual(expected.labels.filter((label) => label >= 0));
      hits.forEach((hit, i) => {
        expect(hit.score).toBeCloseTo(expected.distances[i] as number, 4);
      });
    }
  });

  it("skips masked chunks inside the scan and probes more lists for a selective mask", () => {
    const d = 32;
    const vectors = clustered(4000, d, 3);
    const index = parseFaissIvfPq(trainFaissIvfPq(vectors, d, { nlist: 32, m: 4 }).toBuffer(), 4000);
    const allow = new Uint8Array(4000);
    for (let i = 0; i < 4000; i += 40) allow[i] = 1;
    const query = vectors.subarray(0, d);
    const hits = searchIvfPq(index, query, 50, { nprobe: 2, allow });
    for (const hit of hits) expect(allow[hit.ordinal]).toBe(1);
    // 1 in 40 allowed: 2 lists' worth of candidates needs every list here.
    expect(hits).toHaveLength(50);
    expect(searchIvfPq(index, query, 10, { nprobe: 4, allow: new Uint8Array(4000) })).toEqual([]);
  });

  it("shapes large indexes: about √n lists, 8 dimensions per code byte", () => {
    expect(ivfPqShape(262_144, 384)).toEqual({ nlist: 512, m: 48 });
    expect(ivfPqShape(4096, 384)).toEqual({ nlist: 64, m: 48 });
    expect(ivfPqShape(500, 384)).toBeUndefined();
  });
});

describe("ANN segments", () => {
  const d = 16;
  const vectors = clustered(3000, d, 5);
  const docs = new Map<string, DocumentInfo>();
  const chunks: EmbeddedChunk[] = [];
  for (let i = 0; i < 3000; i += 1) {
    const documentId = `d${Math.floor(i / 3)}`;
    docs.set(documentId, { documentId, collection: "c", contentType: i % 2 ? "text/plain" : "text/html" });
    chunks.push({
      chunkId: `${documentId}:${i % 3}`,
      documentId,
      ordinal: i % 3,
      page: 1,
      start: 0,
      end: 5,
      text: `word${i % 97} term${i % 13}`,
      collection: "c",
      vector: vectors.subarray(i * d, (i + 1) * d),
    });
  }
  const ann = buildSegment("ann", chunks, docs, { annMinChunks: 1024, createdAt: "2026-01-01T00:00:00Z" });
  const flat = buildSegment("flat", chunks, docs, { createdAt: "2026-01-01T00:00:00Z" });

  it("re-score their shortlist exactly: high recall, exact scores", async () => {
    expect(ann.header.dense).toMatchObject({ kind: "ivfpq" });
    expect(flat.header.dense).toEqual({ kind: "flat" });
    const decoded = decodeSegment(encodeSegment(ann));
    let found = 0;
    for (let q = 0; q < 30; q += 1) {
      const vector = Array.from(clustered(30, d, 9).subarray(q * d, (q + 1) * d));
      const query = { text: "", vector, k: 10, mode: "dense" as const };
      const exact = await searchSegments([flat], query);
      const approx = await searchSegments([decoded], query);
      const truth = new Map(exact.map((c) => [c.chunk.chunkId, c.scores.dense as number]));
      found += approx.filter((c) => truth.has(c.chunk.chunkId)).length;
      for (const c of approx) {
        // Every score is the exact inner product (float32), whatever list it came from.
        const [stored] = await flat.vectors([flat.chunkIds.find(c.chunk.chunkId)]);
        const dot = (stored as Float32Array).reduce(
          (sum, x, j) => sum + x * (normalizeInto(vector, new Float32Array(d))[j] as number),
          0,
        );
        expect(c.scores.dense).toBeCloseTo(dot, 5);
      }
    }
    expect(found / 300).toBeGreaterThan(0.9);
  });

  it("store their vectors in inverted-list order: read back by ordinal, merged intact, a probed list in one range", async () => {
    const decoded = decodeSegment(encodeSegment(ann));
    expect(decoded.header.dense).toMatchObject({ kind: "ivfpq", vectorOrder: "lists" });
    const all = Array.from({ length: ann.size }, (_, i) => i);
    const expected = await flat.vectors(all);
    expect(await decoded.vectors(all)).toEqual(expected);
    const { rows, ordinals } = await decoded.storedVectors();
    expect(ordinals).toBeDefined();
    expect(Array.from(ordinals as Uint32Array).sort((a, b) => a - b)).toEqual(all);
    ordinals?.forEach((ordinal, row) => {
      expect(rows.subarray(row * d, (row + 1) * d)).toEqual(expected[ordinal]);
    });
    // Compaction un-permutes: the merged segment (flat, exact) holds every chunk's own vector.
    const merged = await mergeSegments([decoded], new Set(), "merged", { annMinChunks: 10_000 });
    const mergedVectors = await merged.vectors(all.map((o) => merged.chunkIds.find(ann.chunkIds.id(o))));
    expect(mergedVectors).toEqual(expected);

    // Opened lazily (as from S3): a dense query's re-scoring reads at most one range per probed list.
    const bytes = encodeSegment(ann);
    const memory = memorySource(bytes);
    const reads: ByteRange[][] = [];
    const lazy = await Segment.open({
      size: bytes.length,
      read: (ranges) => {
        reads.push([...ranges]);
        return memory.read(ranges);
      },
    });
    reads.length = 0;
    const vector = Array.from(clustered(30, d, 9).subarray(0, d));
    const nprobe = 8;
    const hits = await searchSegments([lazy], { text: "", vector, k: 10, mode: "dense", ann: { nprobe, rescore: 4 } });
    expect(hits).toHaveLength(10);
    // The shortlist's vectors, then the results' chunk records and texts.
    expect(reads).toHaveLength(3);
    expect((reads[0] as ByteRange[]).length).toBeLessThanOrEqual(nprobe);
    // …and only around the probed lists: in chunk order the same candidates would span the whole group.
    const vectorBytes = (reads[0] as ByteRange[]).reduce((sum, range) => sum + range.length, 0);
    expect(vectorBytes).toBeLessThan((ann.size * d * 4) / 2);

    // Once local (the segment cached on disk), reads cost microseconds: exactly the shortlist's vectors.
    const localReads: ByteRange[][] = [];
    const local = await Segment.open({
      size: bytes.length,
      local: true,
      read: (ranges) => {
        localReads.push([...ranges]);
        return memory.read(ranges);
      },
    });
    localReads.length = 0;
    const again = await searchSegments([local], {
      text: "",
      vector,
      k: 10,
      mode: "dense",
      ann: { nprobe, rescore: 4 },
    });
    expect(again.map((c) => c.chunk.chunkId)).toEqual(hits.map((c) => c.chunk.chunkId));
    const vectorReads = localReads[0] as ByteRange[];
    expect(vectorReads.length).toBeGreaterThan(nprobe);
    for (const range of vectorReads) expect(range.length).toBe(d * 4);
  });

  it("honour filters and masks, answering a selective filter by an exact scan", async () => {
    const vector = Array.from(vectors.subarray(0, d));
    const html = await searchSegments([ann], {
      text: "",
      vector,
      k: 20,
      mode: "dense",
      filters: { contentTypes: ["text/html"] },
    });
    expect(html).toHaveLength(20);
    for (const c of html) expect(c.chunk.contentType).toBe("text/html");
    const few = await searchSegments([ann], {
      text: "",
      vector,
      k: 5,
      mode: "dense",
      filters: { documentIds: ["d7", "d500"] },
    });
    const exact = await searchSegments([flat], {
      text: "",
      vector,
      k: 5,
      mode: "dense",
      filters: { documentIds: ["d7", "d500"] },
    });
    expect(few.map((c) => c.chunk.chunkId)).toEqual(exact.map((c) => c.chunk.chunkId));
    const masked = await searchSegments([ann], { text: "", vector, k: 10, mode: "dense", tombstones: new Set(["d0"]) });
    expect(masked.some((c) => c.chunk.documentId === "d0")).toBe(false);
  });
});
