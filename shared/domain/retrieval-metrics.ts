/**
 * Retrieval-quality and latency metrics for the evaluation.
 *
 * Definitions follow pytrec_eval / trec_eval as used by BEIR:
 *  - nDCG@k: DCG = Σ_{i=1..k} rel_i / log2(i + 1) with the graded relevance as gain (not 2^rel − 1);
 *    the ideal DCG ranks the query's judged relevance grades (> 0) in decreasing order; 0 when the query
 *    has no relevant document.
 *  - Recall@k: relevant documents (grade > 0) in the top k / all relevant documents (0 when none).
 *  - MRR@k: 1 / rank of the first relevant document within the top k, 0 if there is none.
 * Documents absent from the judgments (or judged < 0) count as grade 0; a document repeated in the ranking counts
 * once (its first position).
 */

/** Judgments for one query: document id → relevance grade. */
export type Qrels = ReadonlyMap<string, number> | Readonly<Record<string, number>>;

function grades(qrels: Qrels): ReadonlyMap<string, number> {
  return qrels instanceof Map ? qrels : new Map(Object.entries(qrels as Record<string, number>));
}

/** The first `k` distinct ids of `ranked`. */
function topK(ranked: readonly string[], k: number): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const id of ranked) {
    if (out.length >= k) break;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

export function dcgAtK(relevances: readonly number[], k: number): number {
  let dcg = 0;
  const n = Math.min(k, relevances.length);
  for (let i = 0; i < n; i += 1) dcg += (relevances[i] as number) / Math.log2(i + 2);
  return dcg;
}

export function ndcgAtK(ranked: readonly string[], qrels: Qrels, k: number): number {
  const judged = grades(qrels);
  const ideal = dcgAtK(
    [...judged.values()].filter((grade) => grade > 0).sort((a, b) => b - a),
    k,
  );
  if (ideal <= 0) return 0;
  const dcg = dcgAtK(
    topK(ranked, k).map((id) => Math.max(0, judged.get(id) ?? 0)),
    k,
  );
  return dcg / ideal;
}

export function recallAtK(ranked: readonly string[], qrels: Qrels, k: number): number {
  const judged = grades(qrels);
  let relevant = 0;
  for (const grade of judged.values()) if (grade > 0) relevant += 1;
  if (relevant === 0) return 0;
  let found = 0;
  for (const id of topK(ranked, k)) if ((judged.get(id) ?? 0) > 0) found += 1;
  return found / relevant;
}

export function mrrAtK(ranked: readonly string[], qrels: Qrels, k: number): number {
  const judged = grades(qrels);
  const top = topK(ranked, k);
  for (let i = 0; i < top.length; i += 1) if ((judged.get(top[i] as string) ?? 0) > 0) return 1 / (i + 1);
  return 0;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) with linear interpolation between closest ranks (NumPy's default):
 * position (n − 1)·p/100 in the sorted values. NaN for no values.
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} not in [0, 100]`);
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const position = ((sorted.length - 1) * p) / 100;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const low = sorted[lower] as number;
  return low + ((sorted[upper] as number) - low) * (position - lower);
}

export interface LatencySummary {
  count: number;
  mean: number;
  min: number;
  max: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Count, mean, min, max, p50, p95 and p99 of `values` (e.g. latencies in ms). */
export function percentiles(values: readonly number[]): LatencySummary {
  let min = Number.NaN;
  let max = Number.NaN;
  for (const value of values) {
    if (!(value >= min)) min = value;
    if (!(value <= max)) max = value;
  }
  return {
    count: values.length,
    mean: mean(values),
    min,
    max,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
  };
}
