import { describe, expect, it } from "vitest";
import { rng } from "../../scripts/seeded-random.ts";
import { searchSegments } from "../../shared/domain/hybrid-search.ts";
import {
  type ByteRange,
  type ByteSource,
  buildSegment,
  decodeSegment,
  encodeSegment,
  memorySource,
  mergeSegments,
  readSegmentHeader,
  SEGMENT_FORMAT_VERSION,
  Segment,
  type StoredChunk,
} from "../../shared/domain/segment.ts";
import { encodeSegmentV1 } from "../../shared/domain/segment-v1.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";

const DIM = 16;

function unitVector(random: () => number): number[] {
  const v = Array.from(
    { length: DIM },
    () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random()),
  );
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

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

function corpus(documents: number, chunksPerDoc: number, seed: number, collection = "c1") {
  const random = rng(seed);
  const docs = new Map<string, DocumentInfo>();
  const chunks: EmbeddedChunk[] = [];
  for (let d = 0; d < documents; d += 1) {
    const documentId = `doc${d}`;
    docs.set(documentId, {
      documentId,
      collection,
      contentType: d % 2 === 0 ? "application/pdf" : "text/plain",
      filename: `${documentId}.txt`,
      metadata: { year: 2000 + (d % 3), lang: "en", reviewed: d % 2 === 0 },
    });
    let offset = 0;
    for (let o = 0; o < chunksPerDoc; o += 1) {
      const text = Array.from({ length: 12 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" ");
      chunks.push({
        chunkId: `${documentId}:${o}`,
        documentId,
        ordinal: o,
        page: 1 + Math.floor(o / 2),
        start: offset,
        end: offset + text.length,
        text,
        collection,
        vector: unitVector(random),
      });
      offset += text.length + 1;
    }
  }
  return { docs, chunks };
}

async function queries(segment: Segment) {
  const [vector] = await segment.vectors([Math.min(3, segment.size - 1)]);
  return [
    { text: "tumor immune therapy", vector, k: 10, mode: "hybrid" as const },
    { text: "insulin dose", vector, k: 10, mode: "hybrid" as const, fusion: "weighted" as const },
    { text: "gene", k: 10, mode: "bm25" as const },
    { text: "", vector, k: 10, mode: "dense" as const },
    { text: "virus", vector, k: 5, mode: "hybrid" as const, filters: { contentTypes: ["text/plain"] } },
  ];
}

/** A byte source that records what is read. */
function recording(bytes: Uint8Array): ByteSource & { reads: ByteRange[] } {
  const inner = memorySource(bytes);
  const reads: ByteRange[] = [];
  return {
    size: bytes.length,
    reads,
    read: (ranges) => {
      reads.push(...ranges);
      return inner.read(ranges);
    },
  };
}

const chunkById = async (segment: Segment, chunkId: string): Promise<StoredChunk | undefined> => {
  const ordinal = segment.chunkIds.find(chunkId);
  return ordinal < 0 ? undefined : (await segment.chunks([ordinal]))[0];
};
const tagged = async (segment: Segment) => (await segment.allChunks()).map((c) => `${c.chunkId}@${c.revision}`);

describe("segments", () => {
  it("round-trips through encode/decode with identical search results", async () => {
    const { docs, chunks } = corpus(12, 4, 1);
    const segment = buildSegment("seg-1", chunks, docs, {
      sourceBatchId: "chunks.embedded-0:100-147",
      createdAt: "2026-01-01T00:00:00Z",
    });
    expect(segment.header).toMatchObject({
      formatVersion: SEGMENT_FORMAT_VERSION,
      segmentId: "seg-1",
      collection: "c1",
      chunkCount: 48,
      documentCount: 12,
      dimension: DIM,
      createdAt: "2026-01-01T00:00:00.000Z",
      sourceBatchId: "chunks.embedded-0:100-147",
      bm25: { params: { k1: 1.2, b: 0.75, k: 1 }, termCount: 11 },
      dense: { kind: "flat" },
    });
    const bytes = encodeSegment(segment);
    expect(Buffer.from(bytes.subarray(0, 4)).toString("latin1")).toBe("DDSG");
    const decoded = decodeSegment(bytes);
    expect(decoded.header).toEqual(segment.header);
    expect(await decoded.allChunks()).toEqual(await segment.allChunks());
    expect(await decoded.vectors([0, 47])).toEqual(await segment.vectors([0, 47]));
    for (const query of await queries(segment)) {
      const before = await searchSegments([segment], query);
      expect(before.length).toBeGreaterThan(0);
      expect(await searchSegments([decoded], query)).toEqual(before);
    }
    // Encoding is deterministic.
    const again = buildSegment("seg-1", chunks, docs, {
      sourceBatchId: "chunks.embedded-0:100-147",
      createdAt: "2026-01-01T00:00:00Z",
    });
    expect(Buffer.from(encodeSegment(again)).equals(Buffer.from(bytes))).toBe(true);
    expect(readSegmentHeader(bytes)).toMatchObject({ segmentId: "seg-1", chunkCount: 48 });
  });

  it("opens by reading the head and resident groups, and a query reads only the ranges it needs", async () => {
    const { docs, chunks } = corpus(400, 4, 21);
    const built = buildSegment("big", chunks, docs, { createdAt: "2026-01-01T00:00:00Z" });
    const bytes = encodeSegment(built);
    const source = recording(bytes);
    const opened = await Segment.open(source);
    // The head (64 KB) and one batch of resident groups; no postings, texts or chunk records.
    const afterOpen = source.reads.reduce((sum, r) => sum + r.length, 0);
    expect(source.reads.length).toBeLessThanOrEqual(5);
    expect(afterOpen).toBeLessThan(bytes.length);
    source.reads.length = 0;
    const query = { text: "insulin", k: 3, mode: "bm25" as const };
    const results = await searchSegments([opened], query);
    expect(results).toEqual(await searchSegments([built], query));
    // One postings range, then the chunk records and texts of the 3 results.
    const read = source.reads.reduce((sum, r) => sum + r.length, 0);
    expect(read).toBeLessThan(64 * 1024);
    expect(results.map((c) => c.chunk.text)).toEqual(
      results.map((c) => chunks.find((x) => x.chunkId === c.chunk.chunkId)?.text),
    );
  });

  it("keeps positions, text and document attributes in the chunk store", async () => {
    const { docs, chunks } = corpus(3, 2, 2);
    const decoded = decodeSegment(encodeSegment(buildSegment("s", chunks, docs)));
    const source = chunks.find((c) => c.chunkId === "doc1:1") as EmbeddedChunk;
    expect(await chunkById(decoded, "doc1:1")).toEqual({
      chunkId: "doc1:1",
      documentId: "doc1",
      ordinal: 1,
      page: 1,
      start: source.start,
      end: source.end,
      text: source.text,
      collection: "c1",
      contentType: "text/plain",
      filename: "doc1.txt",
      metadata: { year: 2001, lang: "en", reviewed: false },
    });
    const d = decoded.documents.find("doc1");
    expect((decoded.documents.chunkStart[d + 1] as number) - (decoded.documents.chunkStart[d] as number)).toBe(2);
    expect(decoded.chunkIds.find("doc1:9")).toBe(-1);
  });

  it("handles segments too small for wink and empty segments", async () => {
    const { docs, chunks } = corpus(1, 2, 3);
    const small = buildSegment("small", chunks, docs);
    const decoded = decodeSegment(encodeSegment(small));
    for (const query of await queries(small))
      expect(await searchSegments([decoded], query)).toEqual(await searchSegments([small], query));

    const empty = buildSegment("empty", [], docs, { collection: "c1", dimension: DIM });
    const emptyDecoded = decodeSegment(encodeSegment(empty));
    expect(emptyDecoded.header).toMatchObject({ chunkCount: 0, dimension: DIM, collection: "c1" });
    const [first] = await queries(small);
    expect((await searchSegments([emptyDecoded, decoded], first as never)).length).toBeGreaterThan(0);
  });

  it("keeps the last occurrence of a chunk id given twice in a batch", async () => {
    const { docs, chunks } = corpus(2, 2, 4);
    const changed = { ...(chunks[0] as EmbeddedChunk), text: "replacement text about insulin" };
    const segment = buildSegment("s", [...chunks, changed], docs);
    expect(segment.size).toBe(4);
    expect((await chunkById(segment, changed.chunkId))?.text).toBe(changed.text);
  });

  it("rejects chunks without document info, mixed collections and corrupted bytes", async () => {
    const { docs, chunks } = corpus(2, 2, 5);
    expect(() => buildSegment("s", chunks, new Map())).toThrow(/no DocumentInfo/);
    const other = { ...(chunks[0] as EmbeddedChunk), collection: "c2" };
    expect(() => buildSegment("s", [other], docs)).toThrow(/collection/);
    const bytes = encodeSegment(buildSegment("s", chunks, docs));
    // A flipped byte in a group read at open (the document table follows the header).
    const header = readSegmentHeader(bytes);
    expect(header.chunkCount).toBe(4);
    const corrupt = Uint8Array.from(bytes);
    const dataOffset = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
    corrupt[dataOffset + 2] = (corrupt[dataOffset + 2] as number) ^ 0xff;
    expect(() => decodeSegment(corrupt)).toThrow(/checksum/);
    await expect(Segment.open(memorySource(corrupt))).rejects.toThrow(/checksum/);
    const badMagic = Uint8Array.from(bytes);
    badMagic[0] = 0;
    expect(() => decodeSegment(badMagic)).toThrow(/magic/);
    const badVersion = Uint8Array.from(bytes);
    badVersion[4] = 99;
    expect(() => decodeSegment(badVersion)).toThrow(/version/);
    expect(() => decodeSegment(bytes.subarray(0, bytes.length - 10))).toThrow(/truncated/);
    expect(() => decodeSegment(bytes.subarray(0, 8))).toThrow(/truncated/);
  });
});

describe("version 1 segments", () => {
  it("are still read, and search as the same chunks in the current format do", async () => {
    const { docs, chunks } = corpus(8, 3, 30);
    const entries = chunks.map((chunk) => ({
      chunk,
      info: docs.get(chunk.documentId) as DocumentInfo,
      vector: chunk.vector,
    }));
    const v1 = encodeSegmentV1(
      { segmentId: "legacy", collection: "c1", dimension: DIM, createdAt: "2025-06-01T00:00:00.000Z" },
      entries,
    );
    expect(new DataView(v1.buffer, v1.byteOffset).getUint16(4, true)).toBe(1);
    const current = buildSegment("legacy", chunks, docs, { createdAt: "2025-06-01T00:00:00.000Z" });
    const opened = await Segment.open(memorySource(v1));
    expect(opened.header).toMatchObject({ segmentId: "legacy", chunkCount: 24, formatVersion: SEGMENT_FORMAT_VERSION });
    expect(await opened.allChunks()).toEqual(await current.allChunks());
    for (const query of await queries(current)) {
      expect(await searchSegments([opened], query)).toEqual(await searchSegments([current], query));
    }
    // Merging a v1 segment with a v2 one gives a v2 segment holding both.
    const newer = buildSegment(
      "newer",
      corpus(2, 2, 31).chunks.map((c) => ({ ...c, documentId: `n${c.documentId}`, chunkId: `n${c.chunkId}` })),
      new Map([
        ["ndoc0", { documentId: "ndoc0", collection: "c1", contentType: "text/plain" }],
        ["ndoc1", { documentId: "ndoc1", collection: "c1", contentType: "text/plain" }],
      ]),
      { createdAt: "2026-01-01T00:00:00Z" },
    );
    const merged = await mergeSegments([decodeSegment(v1), newer], new Set(), "m");
    expect(merged.size).toBe(28);
  });
});

describe("mergeSegments", () => {
  it("drops tombstoned documents and duplicate chunk ids, keeping the newest version", async () => {
    const { docs, chunks } = corpus(6, 3, 6);
    const older = buildSegment("old", chunks.slice(0, 12), docs, { createdAt: "2026-01-01T00:00:00Z" });
    // The newer segment re-delivers doc3 (identical) and changes doc2:0.
    const doc2first = chunks.find((c) => c.chunkId === "doc2:0") as EmbeddedChunk;
    const updated = { ...doc2first, text: "updated vitamin text", vector: chunks[17]?.vector as number[] };
    const newerChunks = [...chunks.slice(9), updated];
    const newer = buildSegment("new", newerChunks, docs, { createdAt: "2026-01-02T00:00:00Z" });
    // Passed newest first on purpose: createdAt decides.
    const merged = await mergeSegments([decodeSegment(encodeSegment(newer)), older], new Set(["doc1"]), "merged");
    expect(merged.header).toMatchObject({
      segmentId: "merged",
      collection: "c1",
      chunkCount: 15,
      documentCount: 5,
      dimension: DIM,
      mergedFrom: ["old", "new"],
      // As new as its newest source.
      createdAt: "2026-01-02T00:00:00.000Z",
    });
    const ids = (await merged.allChunks()).map((c) => c.chunkId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.some((id) => id.startsWith("doc1:"))).toBe(false);
    expect((await chunkById(merged, "doc2:0"))?.text).toBe("updated vitamin text");
    // Vectors come through unchanged.
    const vectorOf = async (segment: Segment, id: string) =>
      Array.from((await segment.vectors([segment.chunkIds.find(id)]))[0] as Float32Array);
    expect(await vectorOf(merged, "doc2:0")).toEqual(await vectorOf(newer, "doc2:0"));
    expect(await vectorOf(merged, "doc0:1")).toEqual(await vectorOf(older, "doc0:1"));
    // BM25 covers the merged text.
    expect(
      (await searchSegments([merged], { text: "updated", k: 5, mode: "bm25" })).map((c) => c.chunk.chunkId),
    ).toEqual(["doc2:0"]);
    // Searching the merged segment equals searching the inputs with the same tombstones (dense).
    const vector = chunks[4]?.vector as number[];
    const dense = { text: "", vector, k: 8, mode: "dense" as const };
    const viaMerged = await searchSegments([merged], dense);
    const viaInputs = await searchSegments([older, newer], { ...dense, tombstones: new Set(["doc1"]) });
    expect(viaMerged.map((c) => c.chunk.chunkId)).toEqual(viaInputs.map((c) => c.chunk.chunkId));
    // (faiss and the filtered JS scan sum in different orders: equal to float32 precision.)
    viaMerged.forEach((c, i) => {
      expect(c.scores.dense).toBeCloseTo(viaInputs[i]?.scores.dense as number, 6);
    });
    // And it survives encoding.
    const decoded = decodeSegment(encodeSegment(merged));
    const [first] = await queries(merged);
    expect(await searchSegments([decoded], first as never)).toEqual(await searchSegments([merged], first as never));
  });

  it("merges BM25 postings exactly as wink indexes the merged chunks' texts", async () => {
    const a = corpus(20, 3, 40);
    const b = corpus(15, 2, 41);
    const rename = (chunk: EmbeddedChunk) => ({
      ...chunk,
      documentId: `b${chunk.documentId}`,
      chunkId: `b${chunk.chunkId}`,
    });
    const bChunks = b.chunks.map(rename);
    const bDocs = new Map([...b.docs].map(([id, doc]) => [`b${id}`, { ...doc, documentId: `b${id}` }]));
    const older = buildSegment("a", a.chunks, a.docs, { createdAt: "2026-01-01T00:00:00Z" });
    const newer = buildSegment("b", bChunks, bDocs, { createdAt: "2026-01-02T00:00:00Z" });
    const masked = new Set(["doc3", "bdoc7"]);
    const merged = await mergeSegments([older, newer], masked, "m");
    const kept = [...a.chunks, ...bChunks].filter((c) => !masked.has(c.documentId));
    const rebuilt = buildSegment("m", kept, new Map([...a.docs, ...bDocs]), { createdAt: "2026-01-02T00:00:00Z" });
    expect(merged.size).toBe(rebuilt.size);
    expect(merged.terms.count).toBe(rebuilt.terms.count);
    const all = Array.from({ length: merged.terms.count }, (_, t) => t);
    for (let t = 0; t < merged.terms.count; t += 1) expect(merged.terms.terms.get(t)).toBe(rebuilt.terms.terms.get(t));
    const [mergedPostings, rebuiltPostings] = await Promise.all([merged.postings(all), rebuilt.postings(all)]);
    expect(mergedPostings).toEqual(rebuiltPostings);
  });

  it("keeps the later segment's version when creation times are equal, and may end empty", async () => {
    const { docs, chunks } = corpus(1, 1, 7);
    const a = buildSegment("a", chunks, docs, { createdAt: "2026-01-01T00:00:00Z" });
    const b = buildSegment("b", [{ ...(chunks[0] as EmbeddedChunk), text: "version b" }], docs, {
      createdAt: "2026-01-01T00:00:00Z",
    });
    expect((await (await mergeSegments([a, b], new Set(), "m")).allChunks())[0]?.text).toBe("version b");
    expect((await (await mergeSegments([b, a], new Set(), "m")).allChunks())[0]?.text).toBe(chunks[0]?.text);
    const none = await mergeSegments([a, b], new Set(["doc0"]), "m");
    expect(none.header).toMatchObject({ chunkCount: 0, dimension: DIM, collection: "c1" });
    expect(await decodeSegment(encodeSegment(none)).allChunks()).toEqual([]);
  });

  it("refuses to merge different collections or dimensions", async () => {
    const one = corpus(1, 1, 8, "c1");
    const two = corpus(1, 1, 9, "c2");
    const a = buildSegment("a", one.chunks, one.docs);
    const b = buildSegment("b", two.chunks, two.docs);
    await expect(mergeSegments([a, b], new Set(), "m")).rejects.toThrow(/collections/);
  });

  it("records the embedding model in the format-2 header, keeps it through a merge and never merges two models", async () => {
    const one = corpus(2, 2, 10);
    const two = corpus(2, 2, 11);
    const a = buildSegment("a", one.chunks, one.docs, { model: "bge-small-en-v1.5-q" });
    expect(readSegmentHeader(encodeSegment(a))).toMatchObject({
      formatVersion: SEGMENT_FORMAT_VERSION,
      model: "bge-small-en-v1.5-q",
    });
    const b = buildSegment("b", two.chunks, two.docs, { model: "bge-small-en-v1.5-q" });
    const merged = await mergeSegments([a, b], new Set(), "m");
    expect(readSegmentHeader(encodeSegment(merged)).model).toBe("bge-small-en-v1.5-q");
    // A segment written before models were recorded merges with its index's model.
    const legacy = buildSegment("l", two.chunks, two.docs);
    expect(readSegmentHeader(encodeSegment(legacy)).model).toBeUndefined();
    const withLegacy = await mergeSegments([a, legacy], new Set(), "m2");
    expect(withLegacy.header.model).toBe("bge-small-en-v1.5-q");
    const other = buildSegment("o", two.chunks, two.docs, { model: "all-minilm-l6-v2-q" });
    await expect(mergeSegments([a, other], new Set(), "m3")).rejects.toThrow(/different embedding models/);
    // The index's model given to the merge is checked against every segment's.
    await expect(mergeSegments([a], new Set(), "m4", { model: "all-minilm-l6-v2-q" })).rejects.toThrow(
      /different embedding models/,
    );
  });
});

describe("document revisions", () => {
  /**
   * Revision r1 of doc0 and doc1 (4 chunks each) in an older segment; revision r2 of doc0 (2 chunks, other
   * text, filename and metadata) in a newer one. Merged: doc0:0-1 from r2, doc0:2-3 and doc1 from r1.
   */
  function revisions() {
    const first = corpus(2, 4, 10);
    const second = corpus(1, 2, 11);
    const r1 = new Map([...first.docs].map(([id, doc]) => [id, { ...doc, revision: "r1" }]));
    const r2 = new Map([
      ["doc0", { ...(second.docs.get("doc0") as DocumentInfo), filename: "doc0-v2.txt", metadata: { year: 2099 } }],
    ]);
    (r2.get("doc0") as DocumentInfo).revision = "r2";
    const older = buildSegment("old", first.chunks, r1, { createdAt: "2026-01-01T00:00:00Z" });
    const newer = buildSegment("new", second.chunks, r2, { createdAt: "2026-01-02T00:00:00Z" });
    return { older, newer, first, second };
  }

  it("stores the revision with every chunk and keys documents by documentKey", async () => {
    const { older } = revisions();
    expect((await chunkById(older, "doc1:2"))?.revision).toBe("r1");
    expect(older.documents.keys()).toEqual(["doc0@r1", "doc1@r1"]);
    expect(older.documents.info(older.documents.find("doc0", "r1"))).toMatchObject({
      documentId: "doc0",
      revision: "r1",
    });
    expect(older.documents.withId("doc1")).toEqual([1, 2]);
    expect(older.documents.find("doc1")).toBe(-1);
    // Without a revision, the key is the bare document id and chunks carry no revision.
    const { docs, chunks } = corpus(1, 2, 12);
    const plain = decodeSegment(encodeSegment(buildSegment("p", chunks, docs)));
    expect(plain.documents.keys()).toEqual(["doc0"]);
    expect((await plain.allChunks()).every((c) => !("revision" in c))).toBe(true);
    expect(plain.documents.info(0)).not.toHaveProperty("revision");
  });

  it("merges two revisions of a document into one segment, each chunk keeping its own revision", async () => {
    const { older, newer, first, second } = revisions();
    // Newest first on purpose: createdAt decides.
    const merged = await mergeSegments([newer, older], new Set(), "m");
    // Each document revision is one range: by document id, then revision, then position.
    expect(await tagged(merged)).toEqual([
      "doc0:2@r1",
      "doc0:3@r1",
      "doc0:0@r2",
      "doc0:1@r2",
      "doc1:0@r1",
      "doc1:1@r1",
      "doc1:2@r1",
      "doc1:3@r1",
    ]);
    // Each revision's chunks keep that revision's info: r1's chunks are not relabelled with r2's.
    expect(await chunkById(merged, "doc0:0")).toMatchObject({
      text: second.chunks[0]?.text,
      filename: "doc0-v2.txt",
      metadata: { year: 2099 },
    });
    expect(await chunkById(merged, "doc0:2")).toMatchObject({
      text: first.chunks[2]?.text,
      filename: "doc0.txt",
      metadata: { year: 2000, lang: "en", reviewed: true },
    });
    const docs = merged.documents;
    expect(docs.keys()).toEqual(["doc0@r1", "doc0@r2", "doc1@r1"]);
    expect([docs.chunkStart[0], docs.chunkStart[1], docs.chunkStart[2]]).toEqual([0, 2, 4]);
    expect(docs.info(docs.find("doc0", "r2"))).toMatchObject({ revision: "r2", metadata: { year: 2099 } });
    expect(docs.withId("doc0")).toEqual([0, 2]);
    // Header counts public documents.
    expect(merged.header).toMatchObject({ chunkCount: 8, documentCount: 2 });

    // Round trip: revisions and both documents of doc0 survive.
    const decoded = decodeSegment(encodeSegment(merged));
    expect(await decoded.allChunks()).toEqual(await merged.allChunks());
    expect(decoded.documents.keys()).toEqual(docs.keys());

    // Merging a segment that already holds both revisions again keeps them apart.
    const again = await mergeSegments([decoded], new Set(), "again");
    expect(await again.allChunks()).toEqual(await merged.allChunks());
  });

  it("drops only the tombstoned revision when merging, or every revision for a bare document id", async () => {
    const { older, newer } = revisions();
    const merge = (masked: string[], id = "m", sources = [older, newer]) => mergeSegments(sources, new Set(masked), id);
    const withoutR1 = await merge(["doc0@r1"]);
    expect(await tagged(withoutR1)).toEqual([
      "doc0:0@r2",
      "doc0:1@r2",
      "doc1:0@r1",
      "doc1:1@r1",
      "doc1:2@r1",
      "doc1:3@r1",
    ]);
    expect(withoutR1.documents.keys()).toEqual(["doc0@r2", "doc1@r1"]);
    const withoutR2 = await merge(["doc0@r2"]);
    expect(await tagged(withoutR2)).toEqual([
      "doc0:0@r1",
      "doc0:1@r1",
      "doc0:2@r1",
      "doc0:3@r1",
      "doc1:0@r1",
      "doc1:1@r1",
      "doc1:2@r1",
      "doc1:3@r1",
    ]);
    const withoutDoc0 = await merge(["doc0"]);
    expect(await tagged(withoutDoc0)).toEqual(["doc1:0@r1", "doc1:1@r1", "doc1:2@r1", "doc1:3@r1"]);
    expect(withoutDoc0.documents.withId("doc0")).toEqual([0, 0]);
    // A tombstone of a revision the segments don't hold changes nothing.
    expect(await tagged(await merge(["doc0@r9", "doc1@r2"]))).toHaveLength(8);
    // Re-compacting a segment holding both revisions drops the tombstoned one too.
    const both = decodeSegment(encodeSegment(await merge([], "both")));
    expect(await tagged(await merge(["doc0@r1"], "m5", [both]))).toEqual(await tagged(withoutR1));

    // Searching the merged segment equals searching the inputs with the same tombstones (here the
    // tombstoned revisions are never the newest copy of a chunk id).
    const [vector] = await older.vectors([2]);
    for (const tombstones of [
      new Set(["doc0@r1"]),
      new Set(["doc0"]),
      new Set(["doc1@r1"]),
      new Set(["doc0@r1", "doc1"]),
    ]) {
      const query = { text: "tumor immune therapy gene", vector, k: 20, mode: "hybrid" as const };
      const merged = await mergeSegments([older, newer], tombstones, "m");
      const viaMerged = (await searchSegments([merged], query)).map((c) => `${c.chunk.chunkId}@${c.chunk.revision}`);
      const viaInputs = (await searchSegments([older, newer], { ...query, tombstones })).map(
        (c) => `${c.chunk.chunkId}@${c.chunk.revision}`,
      );
      expect(viaInputs.length).toBeGreaterThan(0);
      expect(viaMerged.sort()).toEqual(viaInputs.sort());
    }
  });
});
