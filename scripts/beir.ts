/**
 * Reading a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv), as the benchmarks
 * and the evaluation do.
 */
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** Each non-blank line of a JSON-lines file, parsed. */
export async function* jsonLines(file: string): AsyncGenerator<Record<string, unknown>> {
  for await (const line of createInterface({ input: createReadStream(file) })) if (line.trim()) yield JSON.parse(line);
}

/** The corpus's documents in file order: id, and title and text joined by a blank line (empty when both are). */
export async function* beirDocuments(dir: string): AsyncGenerator<{ id: string; text: string }> {
  for await (const doc of jsonLines(join(dir, "corpus.jsonl"))) {
    yield { id: String(doc._id), text: [doc.title, doc.text].filter(Boolean).join("\n\n") };
  }
}

/** The test judgements: query id → document id → relevance. */
export async function beirQrels(dir: string): Promise<Map<string, Map<string, number>>> {
  const qrels = new Map<string, Map<string, number>>();
  for await (const line of createInterface({ input: createReadStream(join(dir, "qrels", "test.tsv")) })) {
    const [queryId, docId, score] = line.split("\t");
    if (!queryId || !docId || queryId === "query-id") continue;
    if (!qrels.has(queryId)) qrels.set(queryId, new Map());
    qrels.get(queryId)?.set(docId, Number(score));
  }
  return qrels;
}
