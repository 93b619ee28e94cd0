/**
 * CloudWatch's embedded metric format (EMF), read back into Prometheus metrics: in AWS a
 * function's EMF log lines become CloudWatch metrics; locally the function host hands each line
 * it prints to `EmfPrometheus.ingest`, and GET /metrics on the runtime exposes the result in the
 * Prometheus text format (prom-client). Generic: what a metric is called and which kind it is
 * comes from the descriptions the runtime is given, with a rule for metrics it does not know.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** How one EMF metric is exposed to Prometheus. */
export interface MetricDescription {
  /** EMF namespace and metric name. */
  namespace: string;
  name: string;
  kind: "counter" | "histogram" | "gauge";
  /** The Prometheus name (time in seconds, counters ending in _total). */
  prometheusName: string;
  /** Label names: the metric's dimensions. */
  dimensions: readonly string[];
  help: string;
  /** Histogram buckets, in the exposed unit. */
  buckets?: readonly number[];
}

/** One metric's values in one EMF line. */
export interface EmfSample {
  namespace: string;
  name: string;
  unit: string;
  /** Dimension values (the union of the line's dimension sets). */
  dimensions: Record<string, string>;
  values: number[];
}

/** The metrics in one log line, or none when the line is not an EMF document. */
export function parseEmf(line: string): EmfSample[] {
  const start = line.indexOf('{"');
  if (start < 0 || !line.includes('"_aws"')) return [];
  let document: Record<string, unknown>;
  try {
    document = JSON.parse(line.slice(start)) as Record<string, unknown>;
  } catch {
    return [];
  }
  const directives = (document._aws as { CloudWatchMetrics?: unknown } | undefined)?.CloudWatchMetrics;
  if (!Array.isArray(directives)) return [];
  const samples: EmfSample[] = [];
  for (const directive of directives as {
    Namespace?: string;
    Dimensions?: string[][];
    Metrics?: { Name: string; Unit?: string }[];
  }[]) {
    const dimensions: Record<string, string> = {};
    for (const key of new Set((directive.Dimensions ?? []).flat())) {
      if (document[key] !== undefined) dimensions[key] = String(document[key]);
    }
    for (const metric of directive.Metrics ?? []) {
      const raw = document[metric.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter((value): value is number => typeof value === "number");
      if (values.length === 0) continue;
      samples.push({
        namespace: directive.Namespace ?? "aws-embedded-metrics",
        name: metric.Name,
        unit: metric.Unit ?? "None",
        dimensions,
        values,
      });
    }
  }
  return samples;
}

const snake = (text: string) =>
  text
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^a-zA-Z0-9_]/g, "_")
    .toLowerCase();

/** Seconds per unit of the EMF time units; undefined for units that are not time. */
const SECONDS_PER: Record<string, number> = { Microseconds: 1e-6, Milliseconds: 1e-3, Seconds: 1 };

/**
 * A metric the descriptions do not name: counts are counters, times histograms, anything else a
 * gauge; named namespace_metric_name (namespace lower-cased, the name in snake case).
 */
export function describeByUnit(sample: Pick<EmfSample, "namespace" | "name" | "unit" | "dimensions">) {
  const kind: MetricDescription["kind"] =
    sample.unit === "Count" ? "counter" : SECONDS_PER[sample.unit] ? "histogram" : "gauge";
  const base = `${sample.namespace.toLowerCase().replace(/[^a-z0-9_]/g, "_")}_${snake(sample.name)}`;
  return {
    namespace: sample.namespace,
    name: sample.name,
    kind,
    prometheusName: `${base}${SECONDS_PER[sample.unit] ? "_seconds" : ""}${kind === "counter" ? "_total" : ""}`,
    dimensions: Object.keys(sample.dimensions).sort(),
    help: `${sample.namespace} ${sample.name} (${sample.unit}), from the functions' embedded metric format`,
  } satisfies MetricDescription;
}

type AnyMetric = Counter<string> | Histogram<string> | Gauge<string>;

/** EMF lines in, Prometheus metrics out (into the given prom-client registry). */
export class EmfPrometheus {
  private readonly byKey = new Map<string, MetricDescription>();
  private readonly created = new Map<string, { description: MetricDescription; metric: AnyMetric }>();

  constructor(
    private readonly registry: Registry,
    descriptions: readonly MetricDescription[] = [],
  ) {
    for (const description of descriptions) this.byKey.set(`${description.namespace}/${description.name}`, description);
    // Every described metric is exposed from the start (a counter at 0 before its first event).
    for (const description of descriptions) {
      this.metricFor({ namespace: description.namespace, name: description.name, unit: "None", dimensions: {} });
    }
  }

  /** Reads one line a function printed; returns how many values it recorded. */
  ingest(line: string): number {
    let recorded = 0;
    for (const sample of parseEmf(line)) {
      const { description, metric } = this.metricFor(sample);
      const labels = Object.fromEntries(
        description.dimensions.map((dimension) => [dimension, sample.dimensions[dimension] ?? ""]),
      );
      const scale = description.kind === "histogram" ? (SECONDS_PER[sample.unit] ?? 1) : 1;
      for (const value of sample.values) {
        if (!Number.isFinite(value)) continue;
        if (metric instanceof Counter) {
          if (value >= 0) metric.inc(labels, value);
        } else if (metric instanceof Histogram) metric.observe(labels, value * scale);
        else metric.set(labels, value);
        recorded++;
      }
    }
    return recorded;
  }

  private metricFor(sample: Omit<EmfSample, "values">) {
    const key = `${sample.namespace}/${sample.name}`;
    const existing = this.created.get(key);
    if (existing) return existing;
    const description: MetricDescription = this.byKey.get(key) ?? describeByUnit(sample);
    const common = {
      name: description.prometheusName,
      help: description.help,
      labelNames: [...description.dimensions],
      registers: [this.registry],
    };
    const metric =
      description.kind === "counter"
        ? new Counter(common)
        : description.kind === "histogram"
          ? new Histogram({ ...common, ...(description.buckets ? { buckets: [...description.buckets] } : {}) })
          : new Gauge(common);
    const entry = { description, metric };
    this.created.set(key, entry);
    return entry;
  }
}
