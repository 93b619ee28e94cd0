import { describe, expect, it } from "vitest";
import { searchSegments } from "../../shared/domain/hybrid-search.ts";
import {
  buildSegment,
  decodeSegment,
  encodeSegment,
  mergeSegments,
  readSegmentHeader,
  SEGMENT_FORMAT_VERSION,
  type Segment,
} from "../../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";

const DIM = 16;

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

function queries(segment: Segment) {
  const vector = segment.vectors.vector(Math.min(3, segment.chunks.length - 1));
  return [
    { text: "tumor immune therapy", vector, k: 10, mode: "hybrid" as const },
    { text: "insulin dose", vector, k: 10, mode: "hybrid" as const, fusion: "weighted" as const },
    { text: "gene", k: 10, mode: "bm25" as const },
    { text: "", vector, k: 10, mode: "dense" as const },
    { text: "virus", vector, k: 5, mode: "hybrid" as const, filters: { contentTypes: ["text/plain"] } },
  ];
}

describe("segments", () => {
  it("round-trips through encode/decode with identical search results", () => {
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
      bm25Kind: "wink",
    });
    const bytes = encodeSegment(segment);
    expect(Buffer.from(bytes.subarray(0, 4)).toString("latin1")).toBe("DDSG");
    const decoded = decodeSegment(bytes);
    expect(decoded.header).toEqual(segment.header);
    expect(decoded.chunks).toEqual(segment.chunks);
    expect(decoded.bm25ToChunk).toBeUndefined();
    expect(decoded.vectors.vectors()).toEqual(segment.vectors.vectors());
    for (const query of queries(segment)) {
      const before = searchSegments([segment], query);
      expect(before.length).toBeGreaterThan(0);
      expect(searchSegments([decoded], query)).toEqual(before);
    }
    // Encoding is deterministic and a decoded segment re-encodes to the same bytes.
    expect(Buffer.from(encodeSegment(decoded)).equals(Buffer.from(bytes))).toBe(true);
    expect(readSegmentHeader(bytes)).toMatchObject({ segmentId: "seg-1", chunkCount: 48 });
  });

  it("keeps positions, text and document attributes in the chunk store", () => {
    const { docs, chunks } = corpus(3, 2, 2);
    const decoded = decodeSegment(encodeSegment(buildSegment("s", chunks, docs)));
    const chunk = decoded.chunks[decoded.chunkOrdinals.get("doc1:1") as number];
    const source = chunks.find((c) => c.chunkId === "doc1:1") as EmbeddedChunk;
    expect(chunk).toEqual({
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
    expect(decoded.documents.get("doc1")?.ordinals).toHaveLength(2);
  });

  it("handles segments too small for wink and empty segments", () => {
    const { docs, chunks } = corpus(1, 2, 3);
    const small = buildSegment("small", chunks, docs);
    expect(small.header.bm25Kind).toBe("exact");
    const decoded = decodeSegment(encodeSegment(small));
    for (const query of queries(small))
      expect(searchSegments([decoded], query)).toEqual(searchSegments([small], query));

    const empty = buildSegment("empty", [], docs, { collection: "c1", dimension: DIM });
    const emptyDecoded = decodeSegment(encodeSegment(empty));
    expect(emptyDecoded.header).toMatchObject({ chunkCount: 0, dimension: DIM, collection: "c1" });
    expect(searchSegments([emptyDecoded, decoded], queries(small)[0] as never).length).toBeGreaterThan(0);
  });

  it("keeps the last occurrence of a chunk id given twice in a batch", () => {
    const { docs, chunks } = corpus(2, 2, 4);
    const changed = { ...(chunks[0] as EmbeddedChunk), text: "replacement text about insulin" };
    const segment = buildSegment("s", [...chunks, changed], docs);
    expect(segment.chunks).toHaveLength(4);
    expect(segment.chunks[segment.chunkOrdinals.get(changed.chunkId) as number]?.text).toBe(changed.text);
  });

  it("rejects chunks without document info, mixed collections and corrupted bytes", () => {
    const { docs, chunks } = corpus(2, 2, 5);
    expect(() => buildSegment("s", chunks, new Map())).toThrow(/no DocumentInfo/);
    const other = { ...(chunks[0] as EmbeddedChunk), collection: "c2" };
    expect(() => buildSegment("s", [other], docs)).toThrow(/collection/);
    const bytes = encodeSegment(buildSegment("s", chunks, docs));
    const corrupt = Uint8Array.from(bytes);
    corrupt[corrupt.length - 5] = (corrupt[corrupt.length - 5] as number) ^ 0xff;
    expect(() => decodeSegment(corrupt)).toThrow(/checksum/);
    const badMagic = Uint8Array.from(bytes);
    badMagic[0] = 0;
    expect(() => decodeSegment(badMagic)).toThrow(/magic/);
    const badVersion = Uint8Array.from(bytes);
    badVersion[4] = 99;
    expect(() => decodeSegment(badVersion)).toThrow(/version/);
    expect(() => decodeSegment(bytes.subarray(0, bytes.length - 10))).toThrow(/truncated/);
  });
});

describe("mergeSegments", () => {
  it("drops tombstoned documents and duplicate chunk ids, keeping the newest version", () => {
    const { docs, chunks } = corpus(6, 3, 6);
    const older = buildSegment("old", chunks.slice(0, 12), docs, { createdAt: "2026-01-01T00:00:00Z" });
    // The newer segment re-delivers doc3 (identical) and changes doc2:0.
    const doc2first = chunks.find((c) => c.chunkId === "doc2:0") as EmbeddedChunk;
    const updated = { ...doc2first, text: "updated vitamin text", vector: chunks[17]?.vector as number[] };
    const newerChunks = [...chunks.slice(9), updated];
    const newer = buildSegment("new", newerChunks, docs, { createdAt: "2026-01-02T00:00:00Z" });
    // Passed newest first on purpose: createdAt decides.
    const merged = mergeSegments([decodeSegment(encodeSegment(newer)), older], new Set(["doc1"]), "merged");
    expect(merged.header).toMatchObject({
      segmentId: "merged",
      collection: "c1",
      chunkCount: 15,
      documentCount: 5,
      dimension: DIM,
      mergedFrom: ["old", "new"],
    });
    const ids = merged.chunks.map((c) => c.chunkId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.some((id) => id.startsWith("doc1:"))).toBe(false);
    const got = merged.chunks[merged.chunkOrdinals.get("doc2:0") as number];
    expect(got?.text).toBe("updated vitamin text");
    // Vectors come through from the stored faiss data.
    expect(Array.from(merged.vectors.vector(merged.chunkOrdinals.get("doc2:0") as number))).toEqual(
      Array.from(newer.vectors.vector(newer.chunkOrdinals.get("doc2:0") as number)),
    );
    expect(Array.from(merged.vectors.vector(merged.chunkOrdinals.get("doc0:1") as number))).toEqual(
      Array.from(older.vectors.vector(older.chunkOrdinals.get("doc0:1") as number)),
    );
    // BM25 was rebuilt over the merged text.
    expect(merged.bm25.search("updated", 5).map((h) => h.id)).toEqual(["doc2:0"]);
    // Searching the merged segment equals searching the inputs with the same tombstones (dense).
    const vector = chunks[4]?.vector as number[];
    const dense = { text: "", vector, k: 8, mode: "dense" as const };
    const viaMerged = searchSegments([merged], dense);
    const viaInputs = searchSegments([older, newer], { ...dense, tombstones: new Set(["doc1"]) });
    expect(viaMerged.map((c) => c.chunk.chunkId)).toEqual(viaInputs.map((c) => c.chunk.chunkId));
    // (faiss and the filtered JS scan sum in different orders: equal to float32 precision.)
    viaMerged.forEach((c, i) => {
      expect(c.scores.dense).toBeCloseTo(viaInputs[i]?.scores.dense as number, 6);
    });
    // And it survives encoding.
    const decoded = decodeSegment(encodeSegment(merged));
    expect(searchSegments([decoded], queries(merged)[0] as never)).toEqual(
      searchSegments([merged], queries(merged)[0] as never),
    );
  });

  it("keeps the later segment's version when creation times are equal, and may end empty", () => {
    const { docs, chunks } = corpus(1, 1, 7);
    const a = buildSegment("a", chunks, docs, { createdAt: "2026-01-01T00:00:00Z" });
    const b = buildSegment("b", [{ ...(chunks[0] as EmbeddedChunk), text: "version b" }], docs, {
      createdAt: "2026-01-01T00:00:00Z",
    });
    expect(mergeSegments([a, b], new Set(), "m").chunks[0]?.text).toBe("version b");
    expect(mergeSegments([b, a], new Set(), "m").chunks[0]?.text).toBe(chunks[0]?.text);
    const none = mergeSegments([a, b], new Set(["doc0"]), "m");
    expect(none.header).toMatchObject({ chunkCount: 0, dimension: DIM, collection: "c1" });
    expect(decodeSegment(encodeSegment(none)).chunks).toEqual([]);
  });

  it("refuses to merge different collections or dimensions", () => {
    const one = corpus(1, 1, 8, "c1");
    const two = corpus(1, 1, 9, "c2");
    const a = buildSegment("a", one.chunks, one.docs);
    const b = buildSegment("b", two.chunks, two.docs);
    expect(() => mergeSegments([a, b], new Set(), "m")).toThrow(/collections/);
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
  const byId = (segment: Segment, chunkId: string) => segment.chunks[segment.chunkOrdinals.get(chunkId) as number];

  it("stores the revision with every chunk and keys documents by documentKey", () => {
    const { older } = revisions();
    expect(byId(older, "doc1:2")?.revision).toBe("r1");
    expect([...older.documents.keys()]).toEqual(["doc0@r1", "doc1@r1"]);
    expect(older.documents.get("doc0@r1")?.info).toMatchObject({ documentId: "doc0", revision: "r1" });
    expect(older.documentKeys.get("doc1")).toEqual(["doc1@r1"]);
    // Without a revision, the key is the bare document id and chunks carry no revision.
    const { docs, chunks } = corpus(1, 2, 12);
    const plain = decodeSegment(encodeSegment(buildSegment("p", chunks, docs)));
    expect([...plain.documents.keys()]).toEqual(["doc0"]);
    expect(plain.documentKeys.get("doc0")).toEqual(["doc0"]);
    expect(plain.chunks.every((c) => !("revision" in c))).toBe(true);
    expect(plain.documents.get("doc0")?.info).not.toHaveProperty("revision");
  });

  it("merges two revisions of a document into one segment, each chunk keeping its own revision", () => {
    const { older, newer, first, second } = revisions();
    // Newest first on purpose: createdAt decides.
    const merged = mergeSegments([newer, older], new Set(), "m");
    expect(merged.chunks.map((c) => `${c.chunkId}@${c.revision}`)).toEqual([
      "doc0:0@r2",
      "doc0:1@r2",
      "doc0:2@r1",
      "doc0:3@r1",
      "doc1:0@r1",
      "doc1:1@r1",
      "doc1:2@r1",
      "doc1:3@r1",
    ]);
    // Each revision's chunks keep that revision's info: r1's chunks are not relabelled with r2's.
    expect(byId(merged, "doc0:0")).toMatchObject({
      text: second.chunks[0]?.text,
      filename: "doc0-v2.txt",
      metadata: { year: 2099 },
    });
    expect(byId(merged, "doc0:2")).toMatchObject({
      text: first.chunks[2]?.text,
      filename: "doc0.txt",
      metadata: { year: 2000, lang: "en", reviewed: true },
    });
    expect([...merged.documents.keys()].sort()).toEqual(["doc0@r1", "doc0@r2", "doc1@r1"]);
    expect(merged.documents.get("doc0@r1")?.ordinals).toEqual([2, 3]);
    expect(merged.documents.get("doc0@r2")?.ordinals).toEqual([0, 1]);
    expect(merged.documents.get("doc0@r2")?.info).toMatchObject({ revision: "r2", metadata: { year: 2099 } });
    expect([...(merged.documentKeys.get("doc0") ?? [])].sort()).toEqual(["doc0@r1", "doc0@r2"]);
    // Header counts public documents.
    expect(merged.header).toMatchObject({ chunkCount: 8, documentCount: 2 });

    // Round trip: revisions, both documents of doc0 and the bytes survive.
    const bytes = encodeSegment(merged);
    const decoded = decodeSegment(bytes);
    expect(decoded.chunks).toEqual(merged.chunks);
    expect(decoded.documents).toEqual(merged.documents);
    expect(decoded.documentKeys).toEqual(merged.documentKeys);
    expect(Buffer.from(encodeSegment(decoded)).equals(Buffer.from(bytes))).toBe(true);

    // Merging a segment that already holds both revisions again keeps them apart.
    const again = mergeSegments([decoded], new Set(), "again");
    expect(again.chunks).toEqual(merged.chunks);
  });

  it("drops only the tombstoned revision when merging, or every revision for a bare document id", () => {
    const { older, newer } = revisions();
    const chunkIds = (segment: Segment) => segment.chunks.map((c) => `${c.chunkId}@${c.revision}`);
    const withoutR1 = mergeSegments([older, newer], new Set(["doc0@r1"]), "m1");
    expect(chunkIds(withoutR1)).toEqual(["doc0:0@r2", "doc0:1@r2", "doc1:0@r1", "doc1:1@r1", "doc1:2@r1", "doc1:3@r1"]);
    expect([...withoutR1.documents.keys()]).toEqual(["doc0@r2", "doc1@r1"]);
    const withoutR2 = mergeSegments([older, newer], new Set(["doc0@r2"]), "m2");
    expect(chunkIds(withoutR2)).toEqual([
      "doc0:0@r1",
      "doc0:1@r1",
      "doc0:2@r1",
      "doc0:3@r1",
      "doc1:0@r1",
      "doc1:1@r1",
      "doc1:2@r1",
      "doc1:3@r1",
    ]);
    const withoutDoc0 = mergeSegments([older, newer], new Set(["doc0"]), "m3");
    expect(chunkIds(withoutDoc0)).toEqual(["doc1:0@r1", "doc1:1@r1", "doc1:2@r1", "doc1:3@r1"]);
    expect(withoutDoc0.documentKeys.has("doc0")).toBe(false);
    // A tombstone of a revision the segments don't hold changes nothing.
    expect(chunkIds(mergeSegments([older, newer], new Set(["doc0@r9", "doc1@r2"]), "m4"))).toHaveLength(8);
    // Re-compacting a segment holding both revisions drops the tombstoned one too.
    const both = decodeSegment(encodeSegment(mergeSegments([older, newer], new Set(), "both")));
    expect(chunkIds(mergeSegments([both], new Set(["doc0@r1"]), "m5"))).toEqual(chunkIds(withoutR1));

    // Searching the merged segment equals searching the inputs with the same tombstones (here the
    // tombstoned revisions are never the newest copy of a chunk id).
    const vector = older.vectors.vector(2);
    for (const tombstones of [
      new Set(["doc0@r1"]),
      new Set(["doc0"]),
      new Set(["doc1@r1"]),
      new Set(["doc0@r1", "doc1"]),
    ]) {
      const query = { text: "tumor immune therapy gene", vector, k: 20, mode: "hybrid" as const };
      const merged = mergeSegments([older, newer], tombstones, "m");
      const viaMerged = searchSegments([merged], query).map((c) => `${c.chunk.chunkId}@${c.chunk.revision}`);
      const viaInputs = searchSegments([older, newer], { ...query, tombstones }).map(
        (c) => `${c.chunk.chunkId}@${c.chunk.revision}`,
      );
      expect(viaInputs.length).toBeGreaterThan(0);
      expect(viaMerged.sort()).toEqual(viaInputs.sort());
    }
  });
});
