import { Metrics } from "@aws-lambda-powertools/metrics";
import {
  type DimensionsOf,
  type FailureReason,
  METRIC_NAMESPACE,
  METRICS,
  type MetricName,
} from "../domain/metric-catalog.ts";

/** Dimension values a metric needs beyond "service" (which the emitter fills in with its own name). */
export type ExtraDimensions<N extends MetricName> = Omit<DimensionsOf<N>, "service">;

/** Where EMF documents go: stdout, one JSON line each (what Lambda ships to CloudWatch Logs). */
type MetricsLogger = ConstructorParameters<typeof Metrics>[0] extends infer O
  ? O extends { logger?: infer L }
    ? L
    : never
  : never;

/**
 * The catalog's metrics as a function emits them: values are buffered during an invocation and
 * `publish` writes them through Powertools Metrics in CloudWatch's embedded metric format, one
 * EMF line per set of dimension values. Every metric carries exactly the catalog's dimensions
 * (Powertools' default "service" dimension is replaced by the catalog's), so the dashboard and
 * the alarms can name each series.
 */
export class PipelineMetrics {
  private pending = new Map<string, { dimensions: Record<string, string>; values: [MetricName, number][] }>();

  constructor(
    readonly service: string,
    private readonly options: { namespace?: string; logger?: MetricsLogger } = {},
  ) {}

  add<N extends MetricName>(name: N, value: number, ...[dimensions]: DimensionArgs<N>): this {
    if (!Number.isFinite(value)) return this;
    const all: Record<string, string> = { ...(dimensions as Record<string, string> | undefined) };
    for (const dimension of METRICS[name].dimensions as readonly string[]) {
      if (dimension === "service") all.service = this.service;
      else if (all[dimension] === undefined) throw new Error(`${name} needs the dimension ${dimension}`);
    }
    const key = JSON.stringify(Object.entries(all).sort());
    const group = this.pending.get(key) ?? { dimensions: all, values: [] };
    group.values.push([name, value]);
    this.pending.set(key, group);
    return this;
  }

  /** Writes what was added since the last publish (nothing when nothing was). */
  publish(): void {
    const groups = [...this.pending.values()];
    this.pending = new Map();
    for (const { dimensions, values } of groups) {
      const metrics = new Metrics({
        namespace: this.options.namespace ?? METRIC_NAMESPACE,
        serviceName: this.service,
        ...(this.options.logger ? { logger: this.options.logger } : {}),
      });
      metrics.clearDefaultDimensions();
      for (const [dimension, value] of Object.entries(dimensions)) metrics.addDimension(dimension, value);
      for (const [name, value] of values) metrics.addMetric(name, METRICS[name].unit, value);
      metrics.publishStoredMetrics();
    }
  }

  /** Runs `work`, then publishes whatever it added (also when it throws). */
  async around<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      this.publish();
    }
  }
}

/** The dimensions argument: required when the metric has dimensions other than "service". */
type DimensionArgs<N extends MetricName> = keyof ExtraDimensions<N> extends never ? [] : [ExtraDimensions<N>];

/**
 * The job store as a stage that fails jobs for one reason class sees it: every `fail` that moved
 * a job to FAILED (true only for the call that did it, so retries and replays count once) adds
 * one DocumentsFailed with that reason.
 */
export function countingFailures<J extends { fail(jobId: string, reason: string): Promise<boolean> }>(
  jobs: J,
  metrics: PipelineMetrics,
  reason: FailureReason,
): J {
  return new Proxy(jobs, {
    get(target, property, receiver) {
      if (property === "fail") {
        return async (jobId: string, why: string) => {
          const failed = await target.fail(jobId, why);
          if (failed) metrics.add("DocumentsFailed", 1, { reason });
          return failed;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
