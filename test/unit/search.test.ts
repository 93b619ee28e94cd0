import { describe, expect, it } from "vitest";
import { rng } from "../../scripts/seeded-random.ts";
import {
  applyRerank,
  type Candidate,
  DEFAULT_RRF_K,
  decodeCursor,
  encodeCursor,
  InvalidCursorError,
  paginate,
  searchSegments,
} from "../../shared/domain/hybrid-search.ts";
import { buildSegment, decodeSegment, encodeSegment, mergeSegments } from "../../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";

function chunk(documentId: string, ordinal: number, text: string, vector: number[], collection = "c"): EmbeddedChunk {
  return {
    chunkId: `${documentId}:${ordinal}`,
    documentId,
    ordinal,
    page: 1,
    start: 0,
    end: text.length,
    text,
    collection,
    vector,
  };
}

function info(documentId: string, contentType = "text/plain", metadata?: DocumentInfo["metadata"]): DocumentInfo {
  return metadata === undefined
    ? { documentId, collection: "c", contentType }
    : { documentId, collection: "c", contentType, metadata };
}

/**
 * Dense order for q = e1: B (1), X (0.9), A (−0.5), C (−1). BM25 order for "alpha": A, X; B and C do
 * not contain it.
 */
function fusionFixture() {
  const chunks = [
    chunk("A", 0, "alpha alpha alpha", [-0.5, 0, Math.sqrt(0.75), 0]),
    chunk("X", 0, "alpha beta", [0.9, Math.sqrt(1 - 0.81), 0, 0]),
    chunk("B", 0, "gamma delta", [1, 0, 0, 0]),
    chunk("C", 0, "epsilon zeta", [-1, 0, 0, 0]),
  ];
  const docs = new Map(["A", "X", "B", "C"].map((id) => [id, info(id)]));
  return { segment: buildSegment("s", chunks, docs), q: [1, 0, 0, 0] };
}

const WORDS = ["protein", "cell", "gene", "tumor", "vitamin", "insulin", "neuron", "virus", "immune", "therapy"];

/** 30 documents × 2 chunks of 10 words, random unit vectors of dimension 8. */
function corpus(seed: number, first = 0, count = 30) {
  const random = rng(seed);
  const docs = new Map<string, DocumentInfo>();
  const chunks: EmbeddedChunk[] = [];
  for (let d = first; d < first + count; d += 1) {
    const id = `doc${d}`;
    docs.set(
      id,
      info(id, d % 3 === 0 ? "application/pdf" : "text/plain; charset=utf-8", {
        year: 2000 + (d % 4),
        open: d % 2 === 0,
      }),
    );
    for (let o = 0; o < 2; o += 1) {
      const text = Array.from({ length: 10 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" ");
      const v = Array.from({ length: 8 }, () => random() * 2 - 1);
      const norm = Math.hypot(...v);
      chunks.push(
        chunk(
          id,
          o,
          text,
          v.map((x) => x / norm),
        ),
      );
    }
  }
  return { docs, chunks };
}

const ids = (candidates: Candidate[]) => candidates.map((c) => c.chunk.chunkId);

describe("fusion", () => {
  it("RRF ranks a chunk found by both retrievers above chunks found by one", async () => {
    const { segment, q } = fusionFixture();
    const results = await searchSegments([segment], { text: "alpha", vector: q, k: 10, mode: "hybrid", candidates: 2 });
    expect(ids(results)).toEqual(["X:0", "B:0", "A:0"]);
    const [x, b, a] = results as [Candidate, Candidate, Candidate];
    expect(x.ranks).toEqual({ dense: 2, bm25: 2 });
    expect(x.scores.fused).toBeCloseTo(2 / (DEFAULT_RRF_K + 2), 12);
    expect(b.scores.fused).toBeCloseTo(1 / (DEFAULT_RRF_K + 1), 12);
    expect(a.scores.fused).toBeCloseTo(1 / (DEFAULT_RRF_K + 1), 12);
    expect(b.scores.bm25).toBeUndefined();
    expect(a.scores.dense).toBeUndefined();
    expect(x.scores.dense).toBeCloseTo(0.9, 5);
    expect(a.scores.bm25).toBeGreaterThan(x.scores.bm25 as number);
  });

  it("supports RRF weights and constant", async () => {
    const { segment, q } = fusionFixture();
    const results = await searchSegments([segment], {
      text: "alpha",
      vector: q,
      k: 10,
      mode: "hybrid",
      candidates: 2,
      rrfK: 10,
      weights: { bm25: 3 },
    });
    expect(ids(results)).toEqual(["X:0", "A:0", "B:0"]);
    expect(results[0]?.scores.fused).toBeCloseTo(3 / 12 + 1 / 12, 12);
    expect(results[1]?.scores.fused).toBeCloseTo(3 / 11, 12);
  });

  it("weighted fusion blends min-max normalised scores", async () => {
    const { segment, q } = fusionFixture();
    const results = await searchSegments([segment], {
      text: "alpha",
      vector: q,
      k: 10,
      mode: "hybrid",
      fusion: "weighted",
      weights: { dense: 0.7, bm25: 0.3 },
      candidates: 3,
    });
    const byId = new Map(results.map((c) => [c.chunk.chunkId, c]));
    const dense = { B: 1, X: 0.9, A: -0.5 };
    const bm25A = byId.get("A:0")?.scores.bm25 as number;
    const bm25X = byId.get("X:0")?.scores.bm25 as number;
    const normDense = (s: number) => (s - dense.A) / (dense.B - dense.A);
    const normBm25 = (s: number) => (s - bm25X) / (bm25A - bm25X);
    expect(byId.get("B:0")?.scores.fused).toBeCloseTo(0.7 * normDense(dense.B), 5);
    expect(byId.get("X:0")?.scores.fused).toBeCloseTo(0.7 * normDense(dense.X) + 0.3 * normBm25(bm25X), 5);
    expect(byId.get("A:0")?.scores.fused).toBeCloseTo(0.3 * normBm25(bm25A), 5);
    expect(ids(results)).toEqual(["B:0", "X:0", "A:0"]);
    // Default weights are 0.5 / 0.5.
    const even = await searchSegments([segment], {
      text: "alpha",
      vector: q,
      k: 10,
      mode: "hybrid",
      fusion: "weighted",
      candidates: 3,
    });
    expect(even.find((c) => c.chunk.chunkId === "A:0")?.scores.fused).toBeCloseTo(0.5, 6);
  });

  it("single-retriever modes return that retriever's scores", async () => {
    const { segment, q } = fusionFixture();
    const bm25 = await searchSegments([segment], { text: "alpha", k: 10, mode: "bm25" });
    expect(ids(bm25)).toEqual(["A:0", "X:0"]);
    expect(bm25[0]?.scores.fused).toBe(bm25[0]?.scores.bm25);
    const dense = await searchSegments([segment], { text: "ignored", vector: q, k: 3, mode: "dense" });
    expect(ids(dense)).toEqual(["B:0", "X:0", "A:0"]);
    expect(dense[0]?.scores.fused).toBeCloseTo(1, 6);
  });

  it("handles empty queries, k <= 0 and a missing vector", async () => {
    const { segment, q } = fusionFixture();
    expect(await searchSegments([segment], { text: "the of and", k: 5, mode: "bm25" })).toEqual([]);
    expect(await searchSegments([segment], { text: "alpha", vector: q, k: 0, mode: "hybrid" })).toEqual([]);
    expect(await searchSegments([], { text: "alpha", vector: q, k: 5, mode: "hybrid" })).toEqual([]);
    // Stop-word-only text in hybrid mode: dense only.
    expect(ids(await searchSegments([segment], { text: "the", vector: q, k: 2, mode: "hybrid" }))).toEqual([
      "B:0",
      "X:0",
    ]);
    await expect(searchSegments([segment], { text: "alpha", k: 5, mode: "hybrid" })).rejects.toThrow(/vector/);
    await expect(searchSegments([segment], { text: "alpha", k: 5, mode: "dense" })).rejects.toThrow(/vector/);
  });
});

describe("filters, tombstones and de-duplication", () => {
  const { docs, chunks } = corpus(11);
  const segment = buildSegment("s1", chunks, docs);
  const vector = chunks[7]?.vector as number[];
  const base = { text: "tumor immune therapy", vector, k: 10, mode: "hybrid" as const, candidates: 5 };

  it("filters by document id before taking the top candidates", async () => {
    const unfiltered = await searchSegments([segment], base);
    const outsider = [...docs.keys()].find((id) => !unfiltered.some((c) => c.chunk.documentId === id)) as string;
    const results = await searchSegments([segment], { ...base, filters: { documentIds: [outsider] } });
    expect(ids(results).sort()).toEqual([`${outsider}:0`, `${outsider}:1`]);
    expect(await searchSegments([segment], { ...base, filters: { documentIds: new Set([outsider]) } })).toEqual(
      results,
    );
    expect(await searchSegments([segment], { ...base, filters: { documentIds: ["unknown"] } })).toEqual([]);
  });

  it("filters by content type (media type, case-insensitive) and metadata", async () => {
    const plain = await searchSegments([segment], { ...base, filters: { contentTypes: ["TEXT/PLAIN"] } });
    expect(plain).toHaveLength(10);
    for (const c of plain) expect(c.chunk.contentType).toBe("text/plain; charset=utf-8");
    const meta = await searchSegments([segment], { ...base, filters: { metadata: { year: 2001, open: false } } });
    expect(meta.length).toBeGreaterThan(0);
    for (const c of meta) expect(c.chunk.metadata).toMatchObject({ year: 2001, open: false });
    // Strict equality: "2001" is not 2001.
    expect(await searchSegments([segment], { ...base, filters: { metadata: { year: "2001" } } })).toEqual([]);
    expect(await searchSegments([segment], { ...base, filters: { metadata: { missing: true } } })).toEqual([]);
    const both = await searchSegments([segment], {
      ...base,
      filters: { contentTypes: ["application/pdf"], metadata: { open: true } },
    });
    for (const c of both) {
      expect(c.chunk.contentType).toBe("application/pdf");
      expect(c.chunk.metadata?.open).toBe(true);
    }
    expect(both.length).toBeGreaterThan(0);
  });

  it("drops tombstoned documents", async () => {
    const unfiltered = await searchSegments([segment], base);
    const dead = new Set(unfiltered.slice(0, 3).map((c) => c.chunk.documentId));
    const results = await searchSegments([segment], { ...base, tombstones: dead });
    expect(results).toHaveLength(10);
    for (const c of results) expect(dead.has(c.chunk.documentId)).toBe(false);
  });

  it("de-duplicates a chunk present in two segments, keeping the newest segment's copy", async () => {
    const old = buildSegment("old", chunks, docs, { createdAt: "2026-01-01T00:00:00Z" });
    const redelivered = buildSegment("new", chunks.slice(0, 20), docs, { createdAt: "2026-01-02T00:00:00Z" });
    for (const mode of ["hybrid", "dense", "bm25"] as const) {
      const results = await searchSegments([redelivered, old], { ...base, mode, k: 30, candidates: 30 });
      const seen = ids(results);
      expect(new Set(seen).size).toBe(seen.length);
      expect(results.length).toBe(mode === "bm25" ? results.length : 30);
      for (const c of results) {
        const inNew = chunks.slice(0, 20).some((x) => x.chunkId === c.chunk.chunkId);
        expect(c.segmentId).toBe(inNew ? "new" : "old");
      }
    }
    // Dense scores equal those of a single segment holding each chunk once.
    const single = await searchSegments([segment], { ...base, mode: "dense", k: 15 });
    const dup = await searchSegments([old, redelivered], { ...base, mode: "dense", k: 15 });
    expect(ids(dup)).toEqual(ids(single));
  });

  it("never returns a chunk version superseded by a newer segment", async () => {
    const v = [1, 0, 0, 0];
    const docs = new Map(["d", "e", "f"].map((id) => [id, info(id)]));
    const old = buildSegment(
      "old",
      [chunk("d", 0, "zebra stripes", v), chunk("e", 0, "lion", [0, 1, 0, 0]), chunk("f", 0, "tiger", [0, 0, 1, 0])],
      docs,
      { createdAt: "2026-01-01T00:00:00Z" },
    );
    const updated = buildSegment("new", [chunk("d", 0, "horse", [0, 0, 0, 1])], docs, {
      createdAt: "2026-01-02T00:00:00Z",
    });
    // The old text matches "zebra", the new one does not: nothing is returned.
    expect(await searchSegments([updated, old], { text: "zebra", k: 5, mode: "bm25" })).toEqual([]);
    const dense = await searchSegments([old, updated, old], { text: "", vector: v, k: 5, mode: "dense" });
    const d = dense.find((c) => c.chunk.chunkId === "d:0");
    expect(d?.segmentId).toBe("new");
    expect(d?.chunk.text).toBe("horse");
    expect(d?.scores.dense).toBeCloseTo(0, 6);
    expect(ids(dense).sort()).toEqual(["d:0", "e:0", "f:0"]);
  });

  it("uses collection-wide idf: BM25 over two segments scores like one segment", async () => {
    const first = corpus(21, 0, 15);
    const second = corpus(22, 15, 15);
    const allDocs = new Map([...first.docs, ...second.docs]);
    const a = buildSegment("a", first.chunks, allDocs, { createdAt: "2026-01-01T00:00:00Z" });
    const b = buildSegment("b", second.chunks, allDocs, { createdAt: "2026-01-02T00:00:00Z" });
    const whole = await mergeSegments([a, b], new Set(), "whole");
    const query = { text: "vitamin neuron", k: 60, mode: "bm25" as const };
    const split = await searchSegments([a, b], query);
    const merged = new Map(
      (await searchSegments([whole], query)).map((c) => [c.chunk.chunkId, c.scores.bm25 as number]),
    );
    // All chunks have 10 terms, so average lengths agree and scores must match (up to wink's 6 decimals;
    // ties may order differently).
    expect(split.length).toBe(merged.size);
    expect(split.length).toBeGreaterThan(20);
    for (const c of split) expect(c.scores.bm25).toBeCloseTo(merged.get(c.chunk.chunkId) as number, 4);
    // Without collection-wide idf the small segments would score differently from the whole.
    const [local] = await searchSegments([a], query);
    expect(
      Math.abs((local?.scores.bm25 as number) - (merged.get(local?.chunk.chunkId as string) as number)),
    ).toBeGreaterThan(0.01);
  });

  it("gives the same results from decoded segments", async () => {
    const decoded = decodeSegment(encodeSegment(segment));
    const query = { ...base, filters: { contentTypes: ["text/plain"] }, tombstones: new Set(["doc3"]) };
    expect(await searchSegments([decoded], query)).toEqual(await searchSegments([segment], query));
  });
});

describe("document revisions", () => {
  /**
   * One segment holding two revisions of A (r2 newer: A:0; r1: A:1, A:2, A:0 superseded by r2), B without
   * a revision and C@r1. Every chunk mentions "kiwi"; vectors are distinct axes.
   */
  async function fixture() {
    const axis = (i: number) => Array.from({ length: 8 }, (_, j) => (j === i ? 1 : 0));
    const rev = (documentId: string, revision: string, metadata: DocumentInfo["metadata"]) => ({
      ...info(documentId, "text/plain", metadata),
      revision,
    });
    const older = buildSegment(
      "old",
      [
        chunk("A", 0, "kiwi apple", axis(0)),
        chunk("A", 1, "kiwi banana", axis(1)),
        chunk("A", 2, "kiwi cherry", axis(2)),
        chunk("B", 0, "kiwi damson", axis(3)),
        chunk("C", 0, "kiwi elder", axis(4)),
      ],
      new Map([
        ["A", rev("A", "r1", { v: 1 })],
        ["B", info("B", "text/plain", { v: 1 })],
        ["C", rev("C", "r1", { v: 1 })],
      ]),
      { createdAt: "2026-01-01T00:00:00Z" },
    );
    const newer = buildSegment(
      "new",
      [chunk("A", 0, "kiwi fig", axis(5))],
      new Map([["A", rev("A", "r2", { v: 2 })]]),
      {
        createdAt: "2026-01-02T00:00:00Z",
      },
    );
    const segment = await mergeSegments([older, newer], new Set(), "both");
    expect(segment.documents.keys().sort()).toEqual(["A@r1", "A@r2", "B", "C@r1"]);
    return { segment, older, newer, vector: Array.from({ length: 8 }, () => 1 / Math.sqrt(8)) };
  }
  const tagged = (candidates: Candidate[]) =>
    candidates.map((c) => `${c.chunk.chunkId}@${c.chunk.revision ?? "-"}`).sort();
  // Tombstones and filters large enough to take the other side of each "iterate the smaller side" path.
  const padding = Array.from({ length: 10 }, (_, i) => `Z${i}@r${i}`);
  const modes = ["dense", "bm25", "hybrid"] as const;

  it("a documentKey tombstone hides only that revision, a bare document id every revision", async () => {
    const { segment, vector } = await fixture();
    const all = ["A:0@r2", "A:1@r1", "A:2@r1", "B:0@-", "C:0@r1"];
    for (const mode of modes) {
      const search = async (tombstones?: string[]) =>
        tagged(
          await searchSegments([segment], {
            text: "kiwi",
            vector,
            k: 10,
            mode,
            ...(tombstones === undefined ? {} : { tombstones: new Set(tombstones) }),
          }),
        );
      expect(await search()).toEqual(all);
      for (const pad of [[], padding]) {
        expect(await search(["A@r1", ...pad])).toEqual(["A:0@r2", "B:0@-", "C:0@r1"]);
        expect(await search(["A@r2", ...pad])).toEqual(["A:1@r1", "A:2@r1", "B:0@-", "C:0@r1"]);
        expect(await search(["A", ...pad])).toEqual(["B:0@-", "C:0@r1"]);
        expect(await search(["C", "B", ...pad])).toEqual(["A:0@r2", "A:1@r1", "A:2@r1"]);
        expect(await search(["A@r9", "A:0", "r1", ...pad])).toEqual(all);
        expect(await search(["A", "B", "C@r1", ...pad])).toEqual([]);
      }
    }
  });

  it("applies the same tombstones across segments holding different revisions", async () => {
    const { older, newer, vector } = await fixture();
    const query = { text: "kiwi", vector, k: 10, mode: "hybrid" as const };
    expect(tagged(await searchSegments([older, newer], { ...query, tombstones: new Set(["A@r1"]) }))).toEqual([
      "A:0@r2",
      "B:0@-",
      "C:0@r1",
    ]);
    expect(tagged(await searchSegments([older, newer], { ...query, tombstones: new Set(["A"]) }))).toEqual([
      "B:0@-",
      "C:0@r1",
    ]);
  });

  it("a hidden newer revision (pending or failed) never hides the shown revision's chunks of the same ids", async () => {
    const { older, newer, vector } = await fixture();
    for (const mode of modes) {
      const query = { text: "kiwi", vector, k: 10, mode, tombstones: new Set(["A@r2"]) };
      expect(tagged(await searchSegments([older, newer], query))).toEqual([
        "A:0@r1",
        "A:1@r1",
        "A:2@r1",
        "B:0@-",
        "C:0@r1",
      ]);
    }
    // Merged while r2 is pending, r1 keeps its chunk 0 (r2's is the one left out).
    const merged = await mergeSegments([older, newer], new Set(), "m", { pending: new Set(["A@r2"]) });
    expect(tagged(await searchSegments([merged], { text: "kiwi", vector, k: 10, mode: "hybrid" }))).toEqual([
      "A:0@r1",
      "A:1@r1",
      "A:2@r1",
      "B:0@-",
      "C:0@r1",
    ]);
  });

  it("filters documentIds by public document id, across revisions", async () => {
    const { segment, vector } = await fixture();
    for (const mode of modes) {
      const search = async (documentIds: string[] | Set<string>, tombstones: string[] = []) =>
        tagged(
          await searchSegments([segment], {
            text: "kiwi",
            vector,
            k: 10,
            mode,
            filters: { documentIds },
            tombstones: new Set(tombstones),
          }),
        );
      for (const pad of [[], padding]) {
        expect(await search(["A", ...pad])).toEqual(["A:0@r2", "A:1@r1", "A:2@r1"]);
        expect(await search(new Set(["A", ...pad]))).toEqual(["A:0@r2", "A:1@r1", "A:2@r1"]);
        expect(await search(["C", "B", ...pad])).toEqual(["B:0@-", "C:0@r1"]);
        // A documentKey is not a public document id.
        expect(await search(["A@r1", "C@r1", ...pad])).toEqual([]);
        expect(await search(["A", ...pad], ["A@r2"])).toEqual(["A:1@r1", "A:2@r1"]);
        expect(await search(["A", "C", ...pad], ["A", ...pad])).toEqual(["C:0@r1"]);
      }
    }
  });

  it("filters each revision by its own document info", async () => {
    const { segment, vector } = await fixture();
    const results = await searchSegments([segment], {
      text: "kiwi",
      vector,
      k: 10,
      mode: "hybrid",
      filters: { metadata: { v: 2 } },
    });
    expect(tagged(results)).toEqual(["A:0@r2"]);
    const old = await searchSegments([segment], {
      text: "kiwi",
      vector,
      k: 10,
      mode: "hybrid",
      filters: { metadata: { v: 1 } },
    });
    expect(tagged(old)).toEqual(["A:1@r1", "A:2@r1", "B:0@-", "C:0@r1"]);
  });

  it("gives the same results from a decoded segment", async () => {
    const { segment, vector } = await fixture();
    const decoded = decodeSegment(encodeSegment(segment));
    expect(await decoded.allChunks()).toEqual(await segment.allChunks());
    for (const tombstones of [new Set(["A@r1"]), new Set(["A"])]) {
      const query = {
        text: "kiwi",
        vector,
        k: 10,
        mode: "hybrid" as const,
        tombstones,
        filters: { documentIds: ["A", "C"] },
      };
      expect(await searchSegments([decoded], query)).toEqual(await searchSegments([segment], query));
    }
  });
});

describe("applyRerank", () => {
  it("re-sorts by the rerank score, records it and leaves the input alone", async () => {
    const { segment, q } = fusionFixture();
    const fused = await searchSegments([segment], { text: "alpha", vector: q, k: 3, mode: "hybrid", candidates: 2 });
    const reranked = applyRerank(fused, [0.1, -2, 5]);
    expect(ids(reranked)).toEqual(["A:0", "X:0", "B:0"]);
    expect(reranked.map((c) => c.scores.rerank)).toEqual([5, 0.1, -2]);
    expect(reranked[0]?.scores.fused).toBe(fused[2]?.scores.fused);
    expect(fused.every((c) => c.scores.rerank === undefined)).toBe(true);
    expect(() => applyRerank(fused, [1])).toThrow(/3 candidates/);
    // Ties keep the fused order.
    expect(ids(applyRerank(fused, new Float32Array([1, 1, 1])))).toEqual(ids(fused));
  });
});

describe("cursors", () => {
  it("encodes an opaque base64url offset and pages through results", async () => {
    const cursor = encodeCursor(20);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(cursor, "base64url").toString())).toEqual({ o: 20 });
    expect(decodeCursor(cursor)).toBe(20);
    expect(decodeCursor(undefined)).toBe(0);
    expect(decodeCursor("")).toBe(0);
    const items = Array.from({ length: 25 }, (_, i) => i);
    const page1 = paginate(items, 10);
    expect(page1.items).toEqual(items.slice(0, 10));
    const page2 = paginate(items, 10, page1.nextCursor);
    expect(page2.items).toEqual(items.slice(10, 20));
    const page3 = paginate(items, 10, page2.nextCursor);
    expect(page3).toEqual({ items: items.slice(20) });
  });

  it("rejects malformed cursors and cursors of another query", async () => {
    for (const bad of ["%%%", "bm90IGpzb24", encodeURIComponent("{}"), Buffer.from('{"o":-1}').toString("base64url")]) {
      expect(() => decodeCursor(bad)).toThrow(InvalidCursorError);
    }
    const cursor = encodeCursor(10, "q1");
    expect(decodeCursor(cursor, "q1")).toBe(10);
    expect(() => decodeCursor(cursor, "q2")).toThrow(/another query/);
    expect(() => encodeCursor(-1)).toThrow(RangeError);
  });
});
