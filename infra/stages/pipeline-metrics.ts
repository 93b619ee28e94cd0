import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import {
  FAILURE_REASONS,
  METRIC_NAMESPACE,
  METRICS,
  type MetricName,
  PIPELINE_STAGES,
} from "../../shared/domain/metric-catalog.ts";

/** p95 time-to-searchable above which the pipeline is alarming, sustained for 15 minutes. */
export const TIME_TO_SEARCHABLE_P95_SECONDS = 300;
/** Share of finished jobs that failed (percent) above which the pipeline is alarming, over 15 minutes. */
export const ERROR_RATE_PERCENT = 5;

/**
 * A catalog metric as CloudWatch holds it: the functions write it in EMF with exactly the
 * catalog's dimensions (shared/domain/metric-catalog.ts), so the series is named here in full.
 */
export function catalogMetric<N extends MetricName>(
  name: N,
  dimensions: Record<string, string>,
  options: { statistic?: string; period?: Duration; label?: string } = {},
): cloudwatch.Metric {
  const definition = METRICS[name];
  const expected = [...definition.dimensions].sort().join(",");
  const given = Object.keys(dimensions).sort().join(",");
  if (expected !== given) throw new Error(`${name} has the dimensions [${expected}], not [${given}]`);
  return new cloudwatch.Metric({
    namespace: METRIC_NAMESPACE,
    metricName: definition.name,
    dimensionsMap: dimensions,
    statistic: options.statistic ?? (definition.kind === "counter" ? cloudwatch.Stats.SUM : cloudwatch.Stats.AVERAGE),
    period: options.period ?? Duration.minutes(5),
    ...(options.label ? { label: options.label } : {}),
  });
}

/** Each catalog metric's series by its "service" dimension: its one emitter. */
const byService = (name: MetricName, options: Parameters<typeof catalogMetric>[2] = {}) =>
  catalogMetric(name, { service: METRICS[name].emittedBy[0] as string }, options);

export interface PipelineMetricsProps {
  dashboard: cloudwatch.Dashboard;
  /** Creates an alarm wired to the stack's alarm topic (Operations' helper). */
  alarm: (id: string, props: cloudwatch.AlarmProps) => cloudwatch.Alarm;
  /** The Kafka event sources' own lag (AWS/Lambda OffsetLag per consumer), for the lag graph. */
  offsetLag: cloudwatch.IMetric[];
  /** Dead-letter objects written (S3 request metrics), graphed next to the emitted count. */
  deadLetterPuts: cloudwatch.IMetric;
  period: Duration;
}

/**
 * The pipeline's own metrics on the dashboard (the catalog's names, as the functions emit them)
 * and the alarms on them: time-to-searchable p95 and the share of jobs that fail.
 */
export function addPipelineMetrics(props: PipelineMetricsProps): void {
  const { dashboard, alarm, period } = props;
  const failed = Object.fromEntries(
    FAILURE_REASONS.map((reason) => [
      reason,
      catalogMetric("DocumentsFailed", { reason }, { period, label: `failed: ${reason}` }),
    ]),
  );
  const failedIds = FAILURE_REASONS.map((_, i) => `f${i}`);
  const completed = byService("DocumentsCompleted", { period, label: "completed" });
  const failedTotal = new cloudwatch.MathExpression({
    expression: `SUM([${failedIds.map((id) => `FILL(${id}, 0)`).join(", ")}])`,
    usingMetrics: Object.fromEntries(FAILURE_REASONS.map((reason, i) => [failedIds[i], failed[reason]])),
    label: "failed",
    period,
  });
  const errorRate = new cloudwatch.MathExpression({
    expression: "100 * failed / MAX([failed + FILL(completed, 0), 1])",
    usingMetrics: { failed: failedTotal, completed },
    label: "failed jobs (%)",
    period,
  });
  alarm("ErrorRateAlarm", {
    alarmName: "error-rate",
    alarmDescription: `More than ${ERROR_RATE_PERCENT} % of the jobs that finished failed, for 15 minutes. DocumentsFailed's reason tells which: bad-input (users' documents), dead-lettered (redrive after fixing the cause), upload-missing, error (see the logs).`,
    metric: errorRate,
    threshold: ERROR_RATE_PERCENT,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 3,
  });
  const timeToSearchable = (statistic: string) =>
    byService("TimeToSearchable", { statistic, period, label: `${statistic} time to searchable` });
  alarm("TimeToSearchableAlarm", {
    alarmName: "time-to-searchable-p95",
    alarmDescription: `p95 time from upload to searchable is above ${TIME_TO_SEARCHABLE_P95_SECONDS} s for 15 minutes: look at the lag and stage durations.`,
    metric: timeToSearchable(cloudwatch.Stats.p(95)),
    threshold: TIME_TO_SEARCHABLE_P95_SECONDS * 1000,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 3,
  });

  const perStage = (name: "StageDuration" | "BatchSize" | "RecordsRetried", statistic?: string) =>
    PIPELINE_STAGES.map((stage) =>
      catalogMetric(name, { stage }, { period, label: stage, ...(statistic ? { statistic } : {}) }),
    );
  const searchModes = ["hybrid", "dense", "bm25"] as const;
  dashboard.addWidgets(
    new cloudwatch.TextWidget({
      markdown: `## Pipeline (${METRIC_NAMESPACE} metrics)\nThe names of shared/domain/metric-catalog.ts; locally the same metrics are at GET /metrics (Prometheus).`,
      width: 24,
      height: 1,
    }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: "Documents accepted / completed / failed",
      left: [byService("DocumentsAccepted", { period, label: "accepted" }), completed, ...Object.values(failed)],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: "Time to searchable (ms)",
      left: [cloudwatch.Stats.p(50), cloudwatch.Stats.p(95), cloudwatch.Stats.p(99)].map(timeToSearchable),
      width: 8,
    }),
    new cloudwatch.GraphWidget({ title: "Failed jobs (%)", left: [errorRate], width: 8 }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: "Chunks embedded / indexed",
      left: [
        byService("ChunksEmbedded", { period, label: "embedded" }),
        byService("ChunksIndexed", { period, label: "indexed" }),
      ],
      width: 6,
    }),
    new cloudwatch.GraphWidget({
      title: "Stage duration per batch (p90, ms)",
      left: perStage("StageDuration", cloudwatch.Stats.p(90)),
      width: 6,
    }),
    new cloudwatch.GraphWidget({ title: "Batch size (average records)", left: perStage("BatchSize"), width: 6 }),
    new cloudwatch.GraphWidget({
      title: "Retries, dead letters, lag",
      left: [...perStage("RecordsRetried"), byService("DeadLetters", { period, label: "dead letters" })],
      right: props.offsetLag,
      width: 6,
    }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: "Search latency (p95, ms)",
      left: searchModes.map((mode) =>
        catalogMetric(
          "SearchLatency",
          { mode, stage: "total" },
          { statistic: cloudwatch.Stats.p(95), period, label: mode },
        ),
      ),
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: "Searches (reranked or not)",
      left: searchModes.flatMap((mode) =>
        ["true", "false"].map((reranked) =>
          catalogMetric(
            "SearchRequests",
            { mode, reranked },
            { period, label: `${mode}${reranked === "true" ? " reranked" : ""}` },
          ),
        ),
      ),
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: "Index cold loads / dead-letter objects",
      left: [byService("IndexColdLoads", { period, label: "segments fetched" })],
      right: [props.deadLetterPuts],
      width: 8,
    }),
  );
}
