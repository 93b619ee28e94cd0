import { describe, expect, it } from "vitest";
import { dcgAtK, mean, mrrAtK, ndcgAtK, percentile, percentiles, recallAtK } from "../../scripts/retrieval-metrics.ts";

// Judgments: d1 grade 1, d3 grade 2, d4 grade 1, d5 judged not relevant.
const qrels = { d1: 1, d3: 2, d4: 1, d5: 0 };

describe("nDCG@k (trec_eval: linear gain, log2(rank + 1) discount)", () => {
  it("matches a hand computation", () => {
    // DCG@3 of [d1, d2, d3] = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 0 + 1 = 2.
    // IDCG@3 = grades [2, 1, 1]: 2/1 + 1/log2(3) + 1/2 = 3.1309297535714578.
    const idcg = 2 + 1 / Math.log2(3) + 0.5;
    expect(dcgAtK([1, 0, 2], 3)).toBeCloseTo(2, 12);
    expect(ndcgAtK(["d1", "d2", "d3"], qrels, 3)).toBeCloseTo(2 / idcg, 12);
    expect(ndcgAtK(["d1", "d2", "d3"], qrels, 3)).toBeCloseTo(0.6387878, 6);
    // k = 1: DCG = 1, IDCG = 2.
    expect(ndcgAtK(["d1", "d2", "d3"], qrels, 1)).toBeCloseTo(0.5, 12);
    // k = 10 with the ideal ranking: 1.
    expect(ndcgAtK(["d3", "d1", "d4", "d2"], qrels, 10)).toBeCloseTo(1, 12);
    // The ideal ranking truncated at k uses only the best k grades: [d3] alone at k = 1 is perfect.
    expect(ndcgAtK(["d3", "x"], qrels, 1)).toBe(1);
  });

  it("accepts a Map, ignores repeated ids and handles no relevant documents", () => {
    const map = new Map(Object.entries(qrels));
    expect(ndcgAtK(["d1", "d2", "d3"], map, 3)).toBeCloseTo(ndcgAtK(["d1", "d2", "d3"], qrels, 3), 12);
    // The repeated d1 is dropped, so d3 moves to rank 2: DCG = 1 + 2/log2(3).
    expect(ndcgAtK(["d1", "d1", "d3"], qrels, 3)).toBeCloseTo(
      (1 + 2 / Math.log2(3)) / (2 + 1 / Math.log2(3) + 0.5),
      12,
    );
    expect(ndcgAtK(["d1"], { d1: 0 }, 10)).toBe(0);
    expect(ndcgAtK([], qrels, 10)).toBe(0);
  });
});

describe("Recall@k and MRR@k", () => {
  it("matches hand computations", () => {
    expect(recallAtK(["d1", "d2", "d3"], qrels, 2)).toBeCloseTo(1 / 3, 12);
    expect(recallAtK(["d1", "d2", "d3"], qrels, 3)).toBeCloseTo(2 / 3, 12);
    expect(recallAtK(["d5", "d4", "d3", "d1"], qrels, 100)).toBe(1);
    expect(recallAtK(["d1"], {}, 10)).toBe(0);
    expect(mrrAtK(["x", "d5", "d3"], qrels, 10)).toBeCloseTo(1 / 3, 12);
    expect(mrrAtK(["x", "d5", "d3"], qrels, 2)).toBe(0);
    expect(mrrAtK(["d4"], qrels, 10)).toBe(1);
  });
});

describe("percentiles", () => {
  it("interpolates linearly like NumPy", () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 95)).toBeCloseTo(95.05, 10);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01, 10);
    expect(percentile(hundred, 0)).toBe(1);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });

  it("summarises latencies", () => {
    expect(percentiles([10, 20, 30, 40, 50])).toEqual({
      count: 5,
      mean: 30,
      min: 10,
      max: 50,
      p50: 30,
      p95: 48,
      p99: 49.6,
    });
    expect(mean([])).toBeNaN();
    expect(percentiles([]).count).toBe(0);
  });
});
