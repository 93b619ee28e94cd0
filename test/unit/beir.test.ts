import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { beirDocuments, beirQrels } from "../../scripts/beir.ts";

function dataset(): string {
  const dir = mkdtempSync(join(tmpdir(), "beir-"));
  mkdirSync(join(dir, "qrels"));
  writeFileSync(
    join(dir, "corpus.jsonl"),
    [
      JSON.stringify({ _id: "d1", title: "Ice ages", text: "Glaciers advanced." }),
      "",
      JSON.stringify({ _id: 2, text: "No title here." }),
      JSON.stringify({ _id: "d3", title: "", text: "" }),
    ].join("\n"),
  );
  writeFileSync(join(dir, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t2\nq2\td3\t0\n\n");
  return dir;
}

describe("BEIR dataset reading", () => {
  it("yields every document in order, title and text joined, blank lines skipped", async () => {
    const docs = [];
    for await (const doc of beirDocuments(dataset())) docs.push(doc);
    expect(docs).toEqual([
      { id: "d1", text: "Ice ages\n\nGlaciers advanced." },
      { id: "2", text: "No title here." },
      { id: "d3", text: "" },
    ]);
  });

  it("reads the test judgements by query, without the header", async () => {
    const qrels = await beirQrels(dataset());
    expect([...qrels.keys()]).toEqual(["q1", "q2"]);
    expect(Object.fromEntries(qrels.get("q1") ?? [])).toEqual({ d1: 1, "2": 2 });
    expect(qrels.get("q2")?.get("d3")).toBe(0);
  });
});
