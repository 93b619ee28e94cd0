import faiss from "faiss-node";
import { describe, expect, it } from "vitest";
import { rng } from "../../scripts/seeded-random.ts";

// faiss-node is CommonJS whose exports are the native binding's: import the whole module.
const { IndexFlatIP } = faiss;

/** Deterministic pseudo-random unit vectors (mulberry32), so failures reproduce. */
function unitVectors(count: number, dimension: number, seed: number): number[][] {
  const random = rng(seed);
  return Array.from({ length: count }, () => {
    const vector = Array.from({ length: dimension }, () => random() * 2 - 1);
    const norm = Math.hypot(...vector);
    return vector.map((value) => value / norm);
  });
}

const cosine = (a: number[], b: number[]) => a.reduce((sum, value, i) => sum + value * (b[i] as number), 0);

describe("faiss-node", () => {
  const dimension = 384;
  const vectors = unitVectors(200, dimension, 42);
  const queries = unitVectors(3, dimension, 7);

  it("IndexFlatIP on normalized vectors ranks by cosine similarity", () => {
    const index = new IndexFlatIP(dimension);
    index.add(vectors.flat());
    expect(index.ntotal()).toBe(vectors.length);

    for (const query of queries) {
      const { labels, distances } = index.search(query, 10);
      const expected = vectors
        .map((vector, id) => ({ id, score: cosine(query, vector) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10);
      // Ids are the insertion positions, so the caller keeps its own id -> chunk mapping.
      expect(labels).toEqual(expected.map((hit) => hit.id));
      for (const [i, distance] of distances.entries())
        expect(distance).toBeCloseTo(expected[i]?.score ?? Number.NaN, 5);
    }
  });

  it("toBuffer/fromBuffer round-trips to identical search results", () => {
    const index = new IndexFlatIP(dimension);
    index.add(vectors.flat());
    const buffer = index.toBuffer();
    expect(Buffer.isBuffer(buffer)).toBe(true);

    const restored = IndexFlatIP.fromBuffer(buffer);
    expect(restored.ntotal()).toBe(index.ntotal());
    expect(restored.getDimension()).toBe(dimension);
    for (const query of queries) {
      expect(restored.search(query, 25)).toEqual(index.search(query, 25));
    }
    // The buffer is a stable serialization: writing the restored index gives the same bytes.
    expect(restored.toBuffer().equals(buffer)).toBe(true);
  });
});
