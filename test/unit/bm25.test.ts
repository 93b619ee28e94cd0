import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { analyze, Bm25Index, bm25Idf, createWinkBm25, prepareText, WINK_MIN_DOCS } from "../../shared/domain/bm25.ts";
import { selectTopK } from "../../shared/domain/top-k.ts";

const docs = [
  { id: "d:0", text: "The quick brown fox jumps over the lazy dog." },
  { id: "d:1", text: "A fast brown dog runs in the park with another dog." },
  { id: "d:2", text: "Cats and dogs are running together in the garden." },
  { id: "d:3", text: "Protein folding studies of amyloid beta aggregation." },
  { id: "d:4", text: "Nothing here but the brown paint." },
];

const query = "brown dogs running";

describe("text analysis", () => {
  it("lower-cases, drops stop words and stems with Porter 2", () => {
    expect(prepareText("The patients were RUNNING studies")).toEqual(["patient", "run", "studi"]);
    expect(prepareText("running runs run")).toEqual(["run", "run", "run"]);
  });

  it("handles elisions, diacritics and numbers", () => {
    expect(prepareText("The patient's naïve cells isn't it")).toEqual(["patient", "naiv", "cell", "not"]);
    expect(prepareText("won't can't")).toEqual(["will", "not", "can", "not"]);
    expect(prepareText("IL-6 and COVID-19 in 2020")).toEqual(["il", "6", "covid", "19", "2020"]);
    expect(prepareText("")).toEqual([]);
    expect(prepareText("the and of to")).toEqual([]);
  });

  it("gives the offsets of the source words", () => {
    const text = "Running, the dogs' park";
    expect(analyze(text)).toEqual([
      { term: "run", start: 0, end: 7 },
      { term: "dog", start: 13, end: 17 },
      { term: "park", start: 19, end: 23 },
    ]);
    for (const token of analyze(docs[1]?.text ?? "")) expect(token.end).toBeGreaterThan(token.start);
    expect(analyze(docs[2]?.text ?? "").map((t) => t.term)).toEqual(prepareText(docs[2]?.text ?? ""));
  });
});

describe("Bm25Index", () => {
  it("uses wink for 3+ documents and scores exactly like wink's own search", () => {
    const index = Bm25Index.build(docs);
    expect(index.kind).toBe("wink");
    const wink = createWinkBm25();
    for (const doc of docs) wink.addDoc({ body: doc.text }, doc.id);
    wink.consolidate(6);
    const expected = wink.search(query, 10);
    const hits = index.search(query, 10);
    expect(hits.map((h) => h.id)).toEqual(expected.map(([id]) => id));
    hits.forEach((hit, i) => {
      expect(hit.score).toBeCloseTo(expected[i]?.[1] ?? Number.NaN, 9);
    });
    // The serialized model is wink's own export.
    expect(index.toJSON()).toBe(wink.exportJSON());
  });

  it("falls back to the exact scorer below wink's minimum, with identical scores", () => {
    expect(WINK_MIN_DOCS).toBe(3);
    const wink = Bm25Index.build(docs, { engine: "wink" });
    const exact = Bm25Index.build(docs, { engine: "exact" });
    expect(exact.kind).toBe("exact");
    const a = wink.search(query, 10);
    const b = exact.search(query, 10);
    expect(b.map((h) => h.id)).toEqual(a.map((h) => h.id));
    b.forEach((hit, i) => {
      expect(hit.score).toBeCloseTo(a[i]?.score ?? Number.NaN, 5);
    });
    expect(Bm25Index.build(docs.slice(0, 2)).kind).toBe("exact");
    expect(() => Bm25Index.build(docs.slice(0, 2), { engine: "wink" })).toThrow(/at least 3/);
  });

  it("scores a one-document collection by the BM25 formula", () => {
    const index = Bm25Index.build([{ id: "only", text: "cat cat dog" }]);
    // N = 1, df = 1: idf = ln(1 + 0.5/1.5); tf = 2, len = avglen = 3: tf part = 2·2.2/(2 + 1.2) = 1.375.
    const [hit] = index.search("cats", 5);
    expect(hit?.id).toBe("only");
    expect(hit?.score).toBeCloseTo(1.375 * Math.log(4 / 3), 12);
    expect(bm25Idf(1, 1)).toBeCloseTo(Math.log(4 / 3), 12);
  });

  it("searches one- and two-document collections and round-trips them through JSON", () => {
    for (const size of [1, 2]) {
      const index = Bm25Index.build(docs.slice(0, size));
      const hits = index.search("brown dog", 5);
      expect(hits.length).toBe(size);
      const loaded = Bm25Index.fromJSON(index.toJSON());
      expect(loaded.kind).toBe("exact");
      expect(loaded.search("brown dog", 5)).toEqual(hits);
    }
  });

  it("round-trips the wink model through JSON; a plain wink engine can load it", () => {
    const index = Bm25Index.build(docs);
    const json = index.toJSON();
    const loaded = Bm25Index.fromJSON(json);
    expect(loaded.kind).toBe("wink");
    expect(loaded.ids).toEqual(docs.map((d) => d.id));
    expect(loaded.search(query, 10)).toEqual(index.search(query, 10));
    expect(loaded.toJSON()).toBe(json);
    const wink = createWinkBm25();
    wink.importJSON(json);
    expect(wink.search(query, 10).map(([id]) => id)).toEqual(index.search(query, 10).map((h) => h.id));
  });

  it("returns [] for stop-word-only and unknown queries, k <= 0 and empty indexes", () => {
    const index = Bm25Index.build(docs);
    expect(index.search("the and of", 10)).toEqual([]);
    expect(index.search("zzzz qqqq", 10)).toEqual([]);
    expect(index.search(query, 0)).toEqual([]);
    expect(Bm25Index.build([]).search(query, 10)).toEqual([]);
    expect(Bm25Index.fromJSON(Bm25Index.build([]).toJSON()).size).toBe(0);
  });

  it("limits to k, honours an allow mask and idf overrides", () => {
    const index = Bm25Index.build(docs);
    const all = index.search("brown", 10);
    expect(all.map((h) => h.id).sort()).toEqual(["d:0", "d:1", "d:4"]);
    expect(index.search("brown", 2)).toEqual(all.slice(0, 2));
    const allow = new Uint8Array(docs.length);
    allow[4] = 1;
    expect(index.search("brown", 10, { allow }).map((h) => h.id)).toEqual(["d:4"]);
    const local = bm25Idf(docs.length, 3);
    const doubled = index.search("brown", 10, { idf: new Map([["brown", 2 * local]]) });
    doubled.forEach((hit) => {
      const base = all.find((h) => h.id === hit.id);
      expect(hit.score).toBeCloseTo(2 * (base?.score ?? 0), 5);
    });
    expect(index.documentFrequency("brown")).toBe(3);
    expect(index.documentFrequency("nothing-here")).toBe(0);
  });

  it("accepts prepared terms", () => {
    const index = Bm25Index.build(docs);
    expect(index.search(prepareText(query), 10)).toEqual(index.search(query, 10));
  });

  it("rejects duplicate ids and foreign JSON", () => {
    expect(() => Bm25Index.build([docs[0] as never, docs[0] as never])).toThrow(/duplicate/);
    expect(() => Bm25Index.fromJSON('{"hello":1}')).toThrow(/not a BM25 model/);
  });

  it("loads wink-nlp-utils pieces without the wink-nlp model", () => {
    const require = createRequire(import.meta.url);
    expect(typeof require("wink-nlp-utils/src/string-stem.js")).toBe("function");
  });
});

describe("selectTopK", () => {
  it("returns the best k, ties to the smaller index", () => {
    const scores = [0.5, 0.9, 0.1, 0.9, 0.7, 0.3];
    const all = scores.map((_, i) => i);
    expect(selectTopK(all, (i) => scores[i] as number, 3)).toEqual([1, 3, 4]);
    expect(selectTopK(all, (i) => scores[i] as number, 10)).toEqual([1, 3, 4, 0, 5, 2]);
    expect(selectTopK(all, (i) => scores[i] as number, 0)).toEqual([]);
    expect(selectTopK([], () => 0, 3)).toEqual([]);
  });

  it("agrees with a full sort on random data", () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const scores = Array.from({ length: 1000 }, () => Math.round(random() * 50));
    const all = scores.map((_, i) => i);
    const sorted = [...all].sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
    expect(selectTopK(all, (i) => scores[i] as number, 37)).toEqual(sorted.slice(0, 37));
  });
});
