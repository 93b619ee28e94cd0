import { describe, expect, it } from "vitest";
import { rng } from "../../scripts/seeded-random.ts";
import { flatVectorsFromFaissBuffer, loadFaiss, VectorIndex } from "../../shared/domain/vector-index.ts";

/** Seeded random unit vectors (mulberry32 + Box–Muller). */
function randomVectors(count: number, dimension: number, seed: number): Float32Array[] {
  const random = rng(seed);
  return Array.from({ length: count }, () => {
    const v = Float32Array.from(
      { length: dimension },
      () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random()),
    );
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

function bruteForce(vectors: Float32Array[], query: Float32Array, allow?: (i: number) => boolean): number[] {
  return vectors
    .map((v, i) => ({ i, score: v.reduce((sum, x, j) => sum + x * (query[j] as number), 0) }))
    .filter(({ i }) => allow === undefined || allow(i))
    .sort((a, b) => b.score - a.score)
    .map(({ i }) => i);
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `doc${i}:0`);

describe("VectorIndex (faiss-node IndexFlatIP)", () => {
  it("loads the faiss-node native addon", () => {
    // Fails (does not skip) when faiss-node is not installed or not built.
    expect(typeof loadFaiss().IndexFlatIP).toBe("function");
  });

  it("finds nearest neighbours by cosine, mapping faiss labels to ids", () => {
    const vectors = randomVectors(200, 16, 1);
    const index = VectorIndex.build(ids(200), vectors);
    expect(index.size).toBe(200);
    expect(index.dimension).toBe(16);
    const [query] = randomVectors(1, 16, 99) as [Float32Array];
    const hits = index.search(query, 10);
    expect(hits.map((h) => h.label)).toEqual(bruteForce(vectors, query).slice(0, 10));
    expect(hits.map((h) => h.id)).toEqual(hits.map((h) => `doc${h.label}:0`));
    const self = index.search(vectors[42] as Float32Array, 1);
    expect(self[0]?.id).toBe("doc42:0");
    expect(self[0]?.score).toBeCloseTo(1, 5);
  });

  it("normalises stored and query vectors, so scores are cosines", () => {
    const index = VectorIndex.build(
      ["a", "b"],
      [
        [3, 0],
        [1, 1],
      ],
    );
    const hits = index.search([10, 0], 2);
    expect(hits[0]).toMatchObject({ id: "a", label: 0 });
    expect(hits[0]?.score).toBeCloseTo(1, 6);
    expect(hits[1]?.score).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it("clamps k to the index size and handles k <= 0 and empty indexes", () => {
    const vectors = randomVectors(5, 8, 2);
    const index = VectorIndex.build(ids(5), vectors);
    expect(index.search(vectors[0] as Float32Array, 50)).toHaveLength(5);
    expect(index.search(vectors[0] as Float32Array, 0)).toEqual([]);
    const empty = VectorIndex.build([], [], { dimension: 8 });
    expect(empty.size).toBe(0);
    expect(empty.search(vectors[0] as Float32Array, 5)).toEqual([]);
    const reloaded = VectorIndex.fromBuffer(empty.toBuffer(), []);
    expect(reloaded.dimension).toBe(8);
    expect(reloaded.search(vectors[0] as Float32Array, 5)).toEqual([]);
    const dimensionless = VectorIndex.build([], []);
    expect(dimensionless.toBuffer().length).toBe(0);
    expect(VectorIndex.fromBuffer(new Uint8Array(0), []).search([1, 2], 3)).toEqual([]);
  });

  it("round-trips through toBuffer/fromBuffer with identical results and vectors", () => {
    const vectors = randomVectors(300, 32, 3);
    const index = VectorIndex.build(ids(300), vectors);
    const buffer = index.toBuffer();
    expect(buffer.subarray(0, 4).toString("latin1")).toBe("IxFI");
    const loaded = VectorIndex.fromBuffer(new Uint8Array(buffer), index.ids);
    const [query] = randomVectors(1, 32, 7) as [Float32Array];
    expect(loaded.search(query, 20)).toEqual(index.search(query, 20));
    expect(loaded.vectors()).toEqual(index.vectors());
    expect(Array.from(loaded.vector(17))).toEqual(Array.from(vectors[17] as Float32Array));
    expect(Array.from(flatVectorsFromFaissBuffer(buffer, 300, 32))).toEqual(Array.from(index.vectors()));
  });

  it("filters with an allow mask, via faiss over-fetch and via the exact scan", () => {
    const vectors = randomVectors(10_000, 8, 4);
    const index = VectorIndex.build(ids(10_000), vectors);
    const [query] = randomVectors(1, 8, 5) as [Float32Array];
    for (const keep of [(i: number) => i % 10 !== 3, (i: number) => i % 10 === 3, (i: number) => i === 77]) {
      const allow = Uint8Array.from({ length: 10_000 }, (_, i) => (keep(i) ? 1 : 0));
      const hits = index.search(query, 10, { allow });
      expect(hits.map((h) => h.label)).toEqual(bruteForce(vectors, query, keep).slice(0, 10));
      for (const hit of hits)
        expect(hit.score).toBeCloseTo(index.search(query, 10_000).find((h) => h.label === hit.label)?.score ?? 0, 5);
    }
    expect(index.search(query, 10, { allow: new Uint8Array(10_000) })).toEqual([]);
  });

  it("rejects mismatched input", () => {
    expect(() => VectorIndex.build(["a"], [])).toThrow(/differ/);
    expect(() => VectorIndex.build(["a", "b"], [[1, 0], [1]])).toThrow(/dimension/);
    const index = VectorIndex.build(["a"], [[1, 0]]);
    expect(() => index.search([1, 0, 0], 1)).toThrow(/dimension/);
    expect(() => VectorIndex.fromBuffer(index.toBuffer(), ["a", "b"])).toThrow(/ids/);
  });
});
