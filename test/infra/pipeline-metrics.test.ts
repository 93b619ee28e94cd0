import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp, cdkJsonContext } from "../../infra/app.ts";
import { TIME_TO_SEARCHABLE_P95_SECONDS } from "../../infra/stages/pipeline-metrics.ts";
import { FAILURE_REASONS, METRIC_CATALOG, METRIC_NAMESPACE } from "../../shared/domain/metric-catalog.ts";

// biome-ignore lint/suspicious/noExplicitAny: template JSON is untyped by nature
type Json = any;

/** The dashboard's and the alarms' metrics, read from the synthesized template (no bundling: the code does not matter here). */
let alarms: Json[];
let dashboardMetrics: string[][];

beforeAll(() => {
  const built = buildApp({
    layerDirectory: join(tmpdir(), "datadistiller-no-layer"),
    context: { ...cdkJsonContext(), "aws:cdk:bundling-stacks": [] },
  });
  const json = Template.fromStack(built.stack).toJSON() as { Resources: Record<string, Json> };
  const resources = Object.values(json.Resources);
  alarms = resources.filter((r) => r.Type === "AWS::CloudWatch::Alarm").map((r) => r.Properties);
  const [dashboard] = resources.filter((r) => r.Type === "AWS::CloudWatch::Dashboard");
  // The body is a Fn::Join of strings and tokens; the tokens (resource names) are not needed here.
  const body = JSON.parse(
    (dashboard.Properties.DashboardBody["Fn::Join"][1] as unknown[])
      .map((part) => (typeof part === "string" ? part : "TOKEN"))
      .join(""),
  );
  dashboardMetrics = body.widgets.flatMap((widget: Json) => widget.properties?.metrics ?? []);
}, 120_000);

/** An alarm's metrics (single metric, or the metrics of its math), as [namespace, name, dimensions, statistic]. */
function metricsOf(
  alarm: Json,
): { namespace: string; name: string; dimensions: Record<string, string>; stat: string }[] {
  const single = alarm.MetricName
    ? [
        {
          MetricStat: {
            Metric: { Namespace: alarm.Namespace, MetricName: alarm.MetricName, Dimensions: alarm.Dimensions ?? [] },
            Stat: alarm.ExtendedStatistic ?? alarm.Statistic,
          },
        },
      ]
    : (alarm.Metrics ?? []);
  return single
    .filter((query: Json) => query.MetricStat)
    .map((query: Json) => ({
      namespace: query.MetricStat.Metric.Namespace,
      name: query.MetricStat.Metric.MetricName,
      dimensions: Object.fromEntries(
        (query.MetricStat.Metric.Dimensions ?? []).map((d: Json) => [
          d.Name,
          typeof d.Value === "string" ? d.Value : "TOKEN",
        ]),
      ),
      stat: query.MetricStat.Stat,
    }));
}

const named = (suffix: string) => alarms.find((alarm) => String(alarm.AlarmName).endsWith(`-${suffix}`));
const catalog = new Map(METRIC_CATALOG.map((metric) => [metric.name, metric]));

describe("CloudWatch dashboard and alarms on the emitted metric names", () => {
  it("graphs every metric the functions emit, under the catalog's names and dimensions", () => {
    const ours = dashboardMetrics.filter((metric) => metric[0] === METRIC_NAMESPACE);
    const graphed = new Set(ours.map((metric) => metric[1]));
    for (const metric of METRIC_CATALOG.filter((m) => !m.emittedBy.includes("runtime"))) {
      expect(graphed, metric.name).toContain(metric.name);
    }
    for (const metric of ours) {
      const definition = catalog.get(metric[1] as string);
      expect(definition, `${metric[1]} is not in the catalog`).toBeDefined();
      // [namespace, name, dim1, value1, dim2, value2, …, {options}?]
      const dimensions = metric
        .slice(2)
        .filter((part) => typeof part === "string")
        .filter((_, i) => i % 2 === 0);
      expect(dimensions.sort(), metric[1]).toEqual([...(definition?.dimensions ?? [])].sort());
    }
  });

  it("alarms on time-to-searchable p95", () => {
    const alarm = named("time-to-searchable-p95");
    expect(metricsOf(alarm)).toEqual([
      { namespace: METRIC_NAMESPACE, name: "TimeToSearchable", dimensions: { service: "index" }, stat: "p95" },
    ]);
    expect(alarm.Threshold).toBe(TIME_TO_SEARCHABLE_P95_SECONDS * 1000);
  });

  it("alarms on the error rate: failed jobs of every reason class against completed ones", () => {
    const alarm = named("error-rate");
    const metrics = metricsOf(alarm);
    expect(metrics.filter((m) => m.name === "DocumentsFailed").map((m) => m.dimensions.reason)).toEqual([
      ...FAILURE_REASONS,
    ]);
    expect(metrics.filter((m) => m.name === "DocumentsCompleted")).toEqual([
      { namespace: METRIC_NAMESPACE, name: "DocumentsCompleted", dimensions: { service: "index" }, stat: "Sum" },
    ]);
    const expression = alarm.Metrics.find((query: Json) => query.ReturnData !== false && query.Expression);
    expect(expression.Expression).toMatch(/100 \* failed/);
  });

  it("alarms on dead letters from the emitted count (and the bucket's writes) and on lag per consumer", () => {
    const names = metricsOf(named("dead-letters")).map((m) => `${m.namespace}/${m.name}`);
    expect(names.sort()).toEqual(["AWS/S3/PutRequests", `${METRIC_NAMESPACE}/DeadLetters`]);
    for (const consumer of ["split", "embed", "index"]) {
      expect(metricsOf(named(`${consumer}-offset-lag`))[0]).toMatchObject({ name: "OffsetLag", stat: "Maximum" });
    }
  });

  it("every metric an alarm reads in the DataDistiller namespace is in the catalog, with its dimensions", () => {
    for (const alarm of alarms) {
      for (const metric of metricsOf(alarm).filter((m) => m.namespace === METRIC_NAMESPACE)) {
        const definition = catalog.get(metric.name);
        expect(definition, metric.name).toBeDefined();
        expect(Object.keys(metric.dimensions).sort()).toEqual([...(definition?.dimensions ?? [])].sort());
      }
    }
  });
});
