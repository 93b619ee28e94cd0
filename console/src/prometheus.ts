/**
 * Reading the Prometheus text exposition (GET /metrics on the local runtime) with a maintained
 * parser, and the few sums the Pipeline view and the tests need from it.
 */
import parsePrometheusTextFormat, { type PrometheusFamily } from "parse-prometheus-text-format";

export type { PrometheusFamily };

export interface Scrape {
  families: Map<string, PrometheusFamily>;
}

export function parseExposition(text: string): Scrape {
  return { families: new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family])) };
}

const matches = (labels: Record<string, string> | undefined, wanted: Record<string, string>) =>
  Object.entries(wanted).every(([key, value]) => labels?.[key] === value);

/** The sum of a counter's or gauge's samples whose labels include `labels` (0 when none). */
export function total(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = scrape.families.get(name);
  return (family?.metrics ?? [])
    .filter((sample) => matches(sample.labels, labels))
    .reduce((sum, sample) => sum + Number(sample.value ?? sample.count ?? 0), 0);
}

/** The samples of a family, with numeric values, grouped by one label. */
export function byLabel(scrape: Scrape, name: string, label: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const sample of scrape.families.get(name)?.metrics ?? []) {
    const key = sample.labels?.[label] ?? "";
    sums.set(key, (sums.get(key) ?? 0) + Number(sample.value ?? sample.count ?? 0));
  }
  return sums;
}

/**
 * A histogram's observation count and cumulative buckets. The parser keeps a histogram's buckets
 * per family, not per series, so read histograms that have one series (e.g. time-to-searchable).
 */
export function histogram(scrape: Scrape, name: string) {
  const buckets = new Map<number, number>();
  for (const sample of scrape.families.get(name)?.metrics ?? []) {
    for (const [bound, cumulative] of Object.entries(sample.buckets ?? {})) {
      buckets.set(bound === "+Inf" ? Number.POSITIVE_INFINITY : Number(bound), Number(cumulative));
    }
  }
  const sorted = [...buckets].sort(([a], [b]) => a - b);
  return { count: sorted.at(-1)?.[1] ?? 0, buckets: sorted };
}

/**
 * A quantile estimated from cumulative buckets, interpolated linearly within the bucket that
 * holds it (as PromQL's histogram_quantile does); undefined without observations.
 */
export function quantile(q: number, buckets: [number, number][]): number | undefined {
  const count = buckets.at(-1)?.[1] ?? 0;
  if (count === 0) return undefined;
  const rank = q * count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [upper, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (upper === Number.POSITIVE_INFINITY) return lowerBound;
      const within = cumulative - lowerCount;
      return within === 0 ? upper : lowerBound + ((upper - lowerBound) * (rank - lowerCount)) / within;
    }
    lowerBound = upper;
    lowerCount = cumulative;
  }
  return lowerBound;
}
