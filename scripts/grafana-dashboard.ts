/**
 * `npm run grafana`: writes the Grafana dashboard of the docker-compose `observability` profile
 * (observability/grafana/dashboards/datadistiller.json), built from the metric catalog so its
 * queries use the names GET /metrics exposes. `--check` writes nothing and fails when the file is
 * not what the catalog generates.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { METRICS, type MetricName, prometheusName } from "../shared/domain/metric-catalog.ts";

export const DASHBOARD_PATH = join(
  import.meta.dirname,
  "..",
  "observability",
  "grafana",
  "dashboards",
  "datadistiller.json",
);

const name = (metric: MetricName) => prometheusName(METRICS[metric]);
const rate = (metric: MetricName, by = "") => `sum${by ? ` by (${by})` : ""}(rate(${name(metric)}[$__rate_interval]))`;
const quantile = (q: number, metric: MetricName, by = "") =>
  `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ""}) (rate(${name(metric)}_bucket[$__rate_interval])))`;

interface Panel {
  title: string;
  description: string;
  unit: string;
  targets: { expr: string; legend: string }[];
  kind?: "timeseries" | "stat";
}

const rows: Panel[][] = [
  [
    {
      title: "Documents per minute",
      description: "Uploads accepted, jobs completed and jobs failed (by reason class).",
      unit: "short",
      targets: [
        { expr: `60 * ${rate("DocumentsAccepted")}`, legend: "accepted" },
        { expr: `60 * ${rate("DocumentsCompleted")}`, legend: "completed" },
        { expr: `60 * ${rate("DocumentsFailed", "reason")}`, legend: "failed: {{reason}}" },
      ],
    },
    {
      title: "Time to searchable",
      description: "From the upload landing to COMPLETED.",
      unit: "s",
      targets: [0.5, 0.95, 0.99].map((q) => ({
        expr: quantile(q, "TimeToSearchable"),
        legend: `p${Math.round(q * 100)}`,
      })),
    },
    {
      title: "Failed jobs (%)",
      description: "Share of finished jobs that failed.",
      unit: "percent",
      targets: [
        {
          expr: `100 * ${rate("DocumentsFailed")} / clamp_min(${rate("DocumentsFailed")} + ${rate("DocumentsCompleted")}, 1e-9)`,
          legend: "failed",
        },
      ],
    },
  ],
  [
    {
      title: "Consumer lag",
      description: "Records each consumer group is behind, per topic and partition.",
      unit: "short",
      targets: [
        { expr: `sum by (group, topic, partition) (${name("ConsumerLag")})`, legend: "{{topic}}/{{partition}}" },
      ],
    },
    {
      title: "Chunks per second",
      description: "Chunks embedded and indexed (each counted once).",
      unit: "short",
      targets: [
        { expr: rate("ChunksEmbedded"), legend: "embedded" },
        { expr: rate("ChunksIndexed"), legend: "indexed" },
      ],
    },
    {
      title: "Stage duration per batch (p90)",
      description: "Time a Kafka-triggered stage spent on one batch.",
      unit: "s",
      targets: [{ expr: quantile(0.9, "StageDuration", "stage"), legend: "{{stage}}" }],
    },
  ],
  [
    {
      title: "Batch size (average records)",
      description: "Records per batch each stage received.",
      unit: "short",
      targets: [
        {
          expr: `sum by (stage) (rate(${name("BatchSize")}_sum[$__rate_interval])) / sum by (stage) (rate(${name("BatchSize")}_count[$__rate_interval]))`,
          legend: "{{stage}}",
        },
      ],
    },
    {
      title: "Retries and dead letters",
      description: "Records handed back for retry (per stage) and batches dead-lettered.",
      unit: "short",
      targets: [
        {
          expr: `sum by (stage) (increase(${name("RecordsRetried")}[$__rate_interval]))`,
          legend: "retried: {{stage}}",
        },
        { expr: `sum(increase(${name("DeadLetters")}[$__rate_interval]))`, legend: "dead letters" },
      ],
    },
    {
      title: "Search latency (p95)",
      description: "By mode and stage.",
      unit: "s",
      targets: [{ expr: quantile(0.95, "SearchLatency", "mode, stage"), legend: "{{mode}} {{stage}}" }],
    },
  ],
  [
    {
      title: "Searches per second",
      description: "By mode, and whether the cross-encoder reranked them.",
      unit: "reqps",
      targets: [{ expr: rate("SearchRequests", "mode, reranked"), legend: "{{mode}} reranked={{reranked}}" }],
    },
    {
      title: "Index cold loads",
      description: "Segments search environments fetched from S3.",
      unit: "short",
      targets: [{ expr: `sum(increase(${name("IndexColdLoads")}[$__rate_interval]))`, legend: "segments" }],
    },
    {
      title: "Dead letters (total)",
      description: "Batches written to the dead-letter bucket since the runtime started.",
      unit: "short",
      kind: "stat",
      targets: [{ expr: `sum(${name("DeadLetters")})`, legend: "dead letters" }],
    },
  ],
];

export function buildDashboard() {
  let id = 0;
  const panels = rows.flatMap((row, y) =>
    row.map((panel, x) => ({
      id: ++id,
      type: panel.kind ?? "timeseries",
      title: panel.title,
      description: panel.description,
      datasource: { type: "prometheus", uid: "prometheus" },
      gridPos: { h: 8, w: 8, x: x * 8, y: y * 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      options: {},
      targets: panel.targets.map((target, i) => ({
        refId: String.fromCharCode(65 + i),
        datasource: { type: "prometheus", uid: "prometheus" },
        expr: target.expr,
        legendFormat: target.legend,
      })),
    })),
  );
  return {
    uid: "datadistiller-pipeline",
    title: "DataDistiller pipeline",
    description: "The local runtime's GET /metrics: the metric catalog's names (shared/domain/metric-catalog.ts).",
    tags: ["datadistiller"],
    timezone: "browser",
    schemaVersion: 39,
    version: 1,
    editable: false,
    refresh: "10s",
    time: { from: "now-30m", to: "now" },
    panels,
  };
}

export const renderDashboard = () => `${JSON.stringify(buildDashboard(), null, 2)}\n`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const rendered = renderDashboard();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(DASHBOARD_PATH, "utf8");
    } catch {
      // missing: stale
    }
    if (current !== rendered) {
      console.error(`${DASHBOARD_PATH} is not what the catalog generates: run npm run grafana`);
      process.exit(1);
    }
    console.log(`${DASHBOARD_PATH} is up to date`);
  } else {
    writeFileSync(DASHBOARD_PATH, rendered);
    console.log(`wrote ${DASHBOARD_PATH}`);
  }
}
