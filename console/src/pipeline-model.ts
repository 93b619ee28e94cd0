/**
 * What the Pipeline view shows, computed from scrapes of GET /metrics (no DOM here, so it is
 * unit-tested under Node). Names come from the metric catalog, as the runtime exposes them.
 */
import { FAILURE_REASONS, METRICS, type MetricName, prometheusName } from "../../shared/domain/metric-catalog.ts";
import { byLabel, histogram, parseExposition, quantile, total } from "./prometheus.ts";

const name = (metric: MetricName) => prometheusName(METRICS[metric]);

export interface PartitionLag {
  group: string;
  topic: string;
  partition: string;
  lag: number;
}

export interface PipelineSnapshot {
  /** When the scrape was taken (ms since the epoch). */
  at: number;
  accepted: number;
  completed: number;
  failed: Record<string, number>;
  failedTotal: number;
  chunksEmbedded: number;
  chunksIndexed: number;
  retried: number;
  deadLetters: number;
  lag: PartitionLag[];
  /** Lag summed over partitions, by topic (a stage's input). */
  lagByTopic: Map<string, number>;
  timeToSearchable: { count: number; p50?: number; p95?: number };
}

export function snapshot(exposition: string, at = Date.now()): PipelineSnapshot {
  const scrape = parseExposition(exposition);
  const failed = Object.fromEntries(
    FAILURE_REASONS.map((reason) => [reason, total(scrape, name("DocumentsFailed"), { reason })]),
  );
  const lag = (scrape.families.get(name("ConsumerLag"))?.metrics ?? []).map((sample) => ({
    group: sample.labels?.group ?? "",
    topic: sample.labels?.topic ?? "",
    partition: sample.labels?.partition ?? "",
    lag: Number(sample.value ?? 0),
  }));
  const tts = histogram(scrape, name("TimeToSearchable"));
  const p50 = quantile(0.5, tts.buckets);
  const p95 = quantile(0.95, tts.buckets);
  return {
    at,
    accepted: total(scrape, name("DocumentsAccepted")),
    completed: total(scrape, name("DocumentsCompleted")),
    failed,
    failedTotal: Object.values(failed).reduce((sum, count) => sum + count, 0),
    chunksEmbedded: total(scrape, name("ChunksEmbedded")),
    chunksIndexed: total(scrape, name("ChunksIndexed")),
    retried: [...byLabel(scrape, name("RecordsRetried"), "stage").values()].reduce((sum, count) => sum + count, 0),
    deadLetters: total(scrape, name("DeadLetters")),
    lag,
    lagByTopic: lag.reduce(
      (sums, { topic, lag: behind }) => sums.set(topic, (sums.get(topic) ?? 0) + behind),
      new Map(),
    ),
    timeToSearchable: {
      count: tts.count,
      ...(p50 !== undefined ? { p50 } : {}),
      ...(p95 !== undefined ? { p95 } : {}),
    },
  };
}

/** Per-minute rates between two snapshots (counters only grow; a runtime restart resets them to 0). */
export function ratesPerMinute(before: PipelineSnapshot, after: PipelineSnapshot) {
  const minutes = (after.at - before.at) / 60_000;
  const rate = (a: number, b: number) => (minutes > 0 && b >= a ? (b - a) / minutes : 0);
  return {
    completed: rate(before.completed, after.completed),
    failed: rate(before.failedTotal, after.failedTotal),
    chunksIndexed: rate(before.chunksIndexed, after.chunksIndexed),
  };
}

/** An SVG polyline's points for values over a width × height box (max at the top; flat at the bottom when all 0). */
export function sparkline(values: readonly number[], width: number, height: number): string {
  if (values.length === 0) return "";
  const max = Math.max(...values, 0);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((value, i) => {
      const y = max > 0 ? height - (value / max) * height : height;
      return `${(i * step).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}
