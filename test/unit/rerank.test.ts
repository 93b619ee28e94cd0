import { describe, expect, it } from "vitest";
import {
  type CrossEncoderPort,
  combineRerank,
  RERANK_RRF_K,
  type RerankSettings,
  rerankFused,
  rerankReportSchema,
  sigmoid,
} from "../../shared/domain/rerank.ts";
import { maxTokensOf } from "../../shared/ml/reranker-files.ts";

interface Item {
  id: string;
  text: string;
  scores: { fused: number; rerank?: number; combined?: number };
}

/** Candidates in fused order (fused scores descending). */
const fusedList = (...ids: string[]): Item[] =>
  ids.map((id, i) => ({ id, text: `passage ${id}`, scores: { fused: 1 - i * 0.1 } }));
const ids = (items: readonly Item[]) => items.map((item) => item.id);

const settings = (overrides: Partial<RerankSettings> = {}): RerankSettings => ({
  enabled: true,
  topN: 3,
  method: "interpolate",
  weight: 0.5,
  deadlineMs: 1000,
  ...overrides,
});

/** A cross-encoder whose logit for a passage is looked up by its text. */
function encoder(
  logits: Record<string, number>,
  delayMs = 0,
): CrossEncoderPort & { calls: string[][]; signal?: AbortSignal } {
  const fake = {
    model: { name: "fake", randomWeights: false },
    calls: [] as string[][],
    signal: undefined as AbortSignal | undefined,
    async relevance(_query: string, passages: readonly string[], signal?: AbortSignal) {
      fake.calls.push([...passages]);
      fake.signal = signal;
      if (delayMs > 0) await new Promise((wake) => setTimeout(wake, delayMs));
      signal?.throwIfAborted();
      return passages.map((passage) => logits[passage] ?? 0);
    },
  };
  return fake;
}

describe("combineRerank", () => {
  const fused = fusedList("a", "b", "c", "d");

  it("weight 1 is the cross-encoder's order, weight 0 the fused order", () => {
    const logits = [-1, 3, 0.5, 2];
    expect(ids(combineRerank(fused, logits, "interpolate", 1))).toEqual(["b", "d", "c", "a"]);
    expect(ids(combineRerank(fused, logits, "interpolate", 0))).toEqual(["a", "b", "c", "d"]);
    expect(ids(combineRerank(fused, logits, "rank", 1))).toEqual(["b", "d", "c", "a"]);
    expect(ids(combineRerank(fused, logits, "rank", 0))).toEqual(["a", "b", "c", "d"]);
  });

  it("interpolates min-max normalised scores and records both scores on each result", () => {
    // fused 1, .9, .8, .7 → 1, 2/3, 1/3, 0; logits -1, 3, 0.5, 2 → 0, 1, 3/8, 3/4
    const ranked = combineRerank(fused, [-1, 3, 0.5, 2], "interpolate", 0.5);
    const byId = Object.fromEntries(ranked.map((item) => [item.id, item.scores]));
    expect(byId.a?.combined).toBeCloseTo(0.5, 10);
    expect(byId.b?.combined).toBeCloseTo(0.5 * (2 / 3) + 0.5, 10);
    expect(byId.c?.combined).toBeCloseTo(0.5 / 3 + 0.5 * 0.375, 10);
    expect(byId.d?.combined).toBeCloseTo(0.375, 10);
    expect(ids(ranked)).toEqual(["b", "a", "d", "c"]);
    // Sorted by the combined score, best first.
    const combined = ranked.map((item) => item.scores.combined as number);
    expect(combined).toEqual([...combined].sort((x, y) => y - x));
    // The cross-encoder's score is its probability; the fused score is kept.
    expect(byId.b?.rerank).toBeCloseTo(sigmoid(3), 12);
    expect(byId.b?.fused).toBeCloseTo(0.9, 12);
  });

  it("weighted rank fusion adds weight/(60 + rerank rank) and (1 - weight)/(60 + fused rank)", () => {
    const ranked = combineRerank(fused, [-1, 3, 0.5, 2], "rank", 0.7);
    const byId = Object.fromEntries(ranked.map((item) => [item.id, item.scores.combined]));
    expect(byId.a).toBeCloseTo(0.7 / (RERANK_RRF_K + 4) + 0.3 / (RERANK_RRF_K + 1), 12);
    expect(byId.b).toBeCloseTo(0.7 / (RERANK_RRF_K + 1) + 0.3 / (RERANK_RRF_K + 2), 12);
    expect(ids(ranked)[0]).toBe("b");
  });

  it("ties keep the fused order; equal logits leave the fused order; the input is not modified", () => {
    expect(ids(combineRerank(fused, [1, 1, 1, 1], "interpolate", 0.9))).toEqual(["a", "b", "c", "d"]);
    expect(ids(combineRerank(fused, [1, 1, 1, 1], "rank", 0.9))).toEqual(["a", "b", "c", "d"]);
    expect(fused.every((item) => item.scores.combined === undefined && item.scores.rerank === undefined)).toBe(true);
  });

  it("refuses a score count that does not match and a weight outside [0, 1]", () => {
    expect(() => combineRerank(fused, [1], "interpolate", 0.5)).toThrow(/1 scores for 4 candidates/);
    expect(() => combineRerank(fused, [1, 2, 3, 4], "interpolate", 1.5)).toThrow(RangeError);
    expect(() => combineRerank(fused, [1, 2, 3, 4], "interpolate", Number.NaN)).toThrow(RangeError);
  });
});

describe("rerankFused", () => {
  const fused = fusedList("a", "b", "c", "d", "e");
  const text = (item: Item) => item.text;

  it("reranks the top-N by the combined score and keeps the rest in fused order", async () => {
    const fake = encoder({ "passage a": -5, "passage b": 0, "passage c": 5, "passage d": 9 });
    const { ranked, report } = await rerankFused("q", fused, text, settings({ weight: 1 }), fake);
    expect(ids(ranked)).toEqual(["c", "b", "a", "d", "e"]);
    expect(fake.calls).toEqual([["passage a", "passage b", "passage c"]]);
    expect(report).toMatchObject({
      reranked: true,
      candidates: 3,
      topN: 3,
      model: { name: "fake", randomWeights: false },
    });
    expect(report.reason).toBeUndefined();
    expect(rerankReportSchema.parse(report)).toEqual(report);
    expect(ranked[3]?.scores.rerank).toBeUndefined();
  });

  it("says why it did not rerank: turned off, no model, nothing to rerank", async () => {
    const fake = encoder({});
    const off = await rerankFused("q", fused, text, settings({ enabled: false }), fake);
    expect(off.report).toMatchObject({ reranked: false, reason: "disabled", candidates: 0 });
    expect(ids(off.ranked)).toEqual(ids(fused));
    const none = await rerankFused("q", fused, text, settings(), undefined, "no cross-encoder in /opt/models/reranker");
    expect(none.report).toMatchObject({
      reranked: false,
      reason: "no-model",
      message: "no cross-encoder in /opt/models/reranker",
    });
    expect(none.report.model).toBeUndefined();
    const empty = await rerankFused("q", [], text, settings(), fake);
    expect(empty.report).toMatchObject({ reranked: false, reason: "no-candidates" });
    expect(fake.calls).toEqual([]);
    for (const outcome of [off, none, empty]) expect(rerankReportSchema.parse(outcome.report)).toEqual(outcome.report);
  });

  it("returns the fused order when the deadline passes, and tells the scorer to stop", async () => {
    const slow = encoder({ "passage c": 9 }, 300);
    const started = performance.now();
    const { ranked, report } = await rerankFused("q", fused, text, settings({ deadlineMs: 20, weight: 1 }), slow);
    expect(performance.now() - started).toBeLessThan(250);
    expect(ids(ranked)).toEqual(ids(fused));
    expect(report).toMatchObject({ reranked: false, reason: "deadline", candidates: 3, deadlineMs: 20 });
    expect(report.message).toMatch(/longer than 20 ms/);
    expect(slow.signal?.aborted).toBe(true);
    expect(ranked.every((item) => item.scores.rerank === undefined)).toBe(true);
  });

  it("reports a failing cross-encoder and answers with the fused order", async () => {
    const broken: CrossEncoderPort = {
      model: { name: "broken", randomWeights: true },
      relevance: async () => {
        throw new Error("session run failed");
      },
    };
    const { ranked, report, error } = await rerankFused("q", fused, text, settings(), broken);
    expect(ids(ranked)).toEqual(ids(fused));
    expect(report).toMatchObject({ reranked: false, reason: "error", model: { name: "broken", randomWeights: true } });
    expect(report.message).toContain("session run failed");
    expect(error).toBeInstanceOf(Error);
  });
});

describe("maxTokensOf", () => {
  it("takes the smallest limit the files give", () => {
    expect(maxTokensOf({ config: { model_type: "bert", max_position_embeddings: 512 } }, { truncation: null })).toBe(
      512,
    );
    expect(
      maxTokensOf(
        { config: { model_type: "bert", max_position_embeddings: 512 }, tokenizerConfig: { model_max_length: 256 } },
        {},
      ),
    ).toBe(256);
    expect(maxTokensOf({}, { truncation: { max_length: 128 } })).toBe(128);
  });

  it("RoBERTa-style positions start after the padding id: 514 positions hold 512 tokens", () => {
    expect(
      maxTokensOf({ config: { model_type: "xlm-roberta", max_position_embeddings: 514, pad_token_id: 1 } }, {}),
    ).toBe(512);
  });

  it("ignores the 'unlimited' sentinel and falls back when nothing says", () => {
    expect(maxTokensOf({ tokenizerConfig: { model_max_length: 1e30 } }, {})).toBe(512);
    expect(maxTokensOf({}, {}, 384)).toBe(384);
  });
});
