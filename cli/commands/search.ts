import type { DataDistillerClient, SearchHit, SearchRequest, SearchResponse } from "../api-client.ts";
import { formatScore, snippet } from "../format.ts";
import { markStyle, note, out, print, printJson } from "../output.ts";

export interface SearchOptions {
  mode: "hybrid" | "dense" | "bm25";
  k: number;
  rerank: boolean;
  collection?: string;
  cursor?: string;
  json?: boolean;
}

export async function searchCommand(client: DataDistillerClient, query: string, options: SearchOptions) {
  const request: SearchRequest = {
    query,
    mode: options.mode,
    k: options.k,
    rerank: options.rerank,
    ...(options.collection ? { collection: options.collection } : {}),
    ...(options.cursor ? { cursor: options.cursor } : {}),
  };
  const response = await client.search(request);
  if (options.json) {
    printJson(response);
    return;
  }
  print(formatSearch(response, options.rerank));
  if (response.nextCursor) note(out.dim(`more results: --cursor ${response.nextCursor}`));
}

function formatHit(hit: SearchHit, rank: number): string {
  const title = hit.filename ? `${out.bold(hit.filename)} ${out.dim(`(${hit.documentId})`)}` : out.bold(hit.documentId);
  const scores = [
    `bm25 ${formatScore(hit.scores.bm25)}`,
    `dense ${formatScore(hit.scores.dense)}`,
    `fused ${formatScore(hit.scores.fused)}`,
    `rerank ${formatScore(hit.scores.rerank)}`,
  ].join(" · ");
  return [
    `${out.cyan(`${rank}.`)} ${title}  page ${hit.page}  score ${formatScore(hit.score)}`,
    `   ${snippet(hit.highlights, markStyle)}`,
    `   ${out.dim(scores)}`,
  ].join("\n");
}

/** The human view: one block per result, then the server's timings. */
export function formatSearch(response: SearchResponse, rerankRequested: boolean): string {
  const blocks = response.results.map((hit, index) => formatHit(hit, index + 1));
  if (blocks.length === 0) blocks.push("no results");
  const { total, ...stages } = response.timings;
  const parts = Object.entries(stages).map(([stage, ms]) => `${stage} ${ms.toFixed(1)}`);
  let timings = `${response.results.length} result${response.results.length === 1 ? "" : "s"} in ${(total ?? 0).toFixed(1)} ms (${parts.join(", ")})`;
  // Say when the results were not reranked, and why (no cross-encoder on the server, the deadline, …).
  const rerank = response.rerank;
  if (rerank?.reranked) {
    timings += `; reranked by ${rerank.model?.name ?? "the cross-encoder"}${rerank.model?.randomWeights ? " (random weights)" : ""}`;
  } else if (rerankRequested && response.results.length > 0) {
    timings += `; not reranked (${rerank?.message ?? "no cross-encoder on the server"})`;
  }
  blocks.push(out.dim(timings));
  return blocks.join("\n\n");
}
