import { describe, expect, it } from "vitest";
import { prepareText } from "../../shared/domain/bm25.ts";
import { escapeHtml, highlight } from "../../shared/domain/highlight.ts";

describe("highlight", () => {
  it("marks words whose stems match the query's", () => {
    const text = "Running shoes: she runs daily; the runner ran.";
    const result = highlight(text, "running");
    expect(result.text).toBe("<mark>Running</mark> shoes: she <mark>runs</mark> daily; the runner ran.");
    expect(result.spans).toEqual([
      [0, 7],
      [19, 23],
    ]);
    for (const [start, end] of result.spans) expect(prepareText(text.slice(start, end))).toEqual(["run"]);
  });

  it("ignores stop words in the query and in the text", () => {
    const result = highlight("The effect of the vitamin on the cells", "the effect of vitamins");
    expect(result.text).toBe("The <mark>effect</mark> of the <mark>vitamin</mark> on the cells");
    expect(highlight("The effect of the vitamin", "the of and").spans).toEqual([]);
  });

  it("HTML-escapes everything outside and inside the marks", () => {
    const result = highlight(`<b>"Tom & Jerry's" cells</b> <script>cell</script>`, "cell");
    expect(result.text).toBe(
      "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot; <mark>cells</mark>&lt;/b&gt; &lt;script&gt;<mark>cell</mark>&lt;/script&gt;",
    );
    expect(escapeHtml(`<&>"'`)).toBe("&lt;&amp;&gt;&quot;&#39;");
  });

  it("folds case and diacritics, keeps offsets into the original text", () => {
    const text = "Une étude NAÏVE: naive Bayes";
    const result = highlight(text, "naïve");
    expect(result.spans.map(([s, e]) => text.slice(s, e))).toEqual(["NAÏVE", "naive"]);
    expect(result.text).toBe("Une étude <mark>NAÏVE</mark>: <mark>naive</mark> Bayes");
  });

  it("marks a contraction once when it yields a matching term", () => {
    const result = highlight("It isn't effective", "not effective");
    expect(result.text).toBe("It <mark>isn&#39;t</mark> <mark>effective</mark>");
    expect(result.spans).toEqual([
      [3, 8],
      [9, 18],
    ]);
  });

  it("accepts prepared terms and handles no match and empty input", () => {
    expect(highlight("Gene therapy", ["gene"]).text).toBe("<mark>Gene</mark> therapy");
    expect(highlight("a < b", "zebra")).toEqual({ text: "a &lt; b", spans: [] });
    expect(highlight("", "gene")).toEqual({ text: "", spans: [] });
  });
});
