/**
 * The pipeline's metric catalog: every metric DataDistiller emits, with its unit, kind and
 * dimensions. One list serves both sides: in AWS the functions write these names in CloudWatch's
 * embedded metric format (Powertools Metrics) under the `DataDistiller` namespace, and the
 * CloudWatch dashboard and alarms read the same names; locally the runtime turns the same EMF
 * lines into Prometheus metrics named by `prometheusName` (GET /metrics), which the Grafana
 * dashboard and the console read.
 *
 * Dimensions stay few and bounded (no tenant, job or document ids: those are in the logs), so a
 * metric has a handful of series whatever the load: CloudWatch bills per series. Each metric has
 * exactly the dimensions listed here (no implicit ones), so an alarm names its series exactly;
 * "service" is the emitting function's service name.
 */

export const METRIC_NAMESPACE = "DataDistiller";

/**
 * counter: a count of events (summed in CloudWatch; `_total` in Prometheus).
 * histogram: a distribution of observations (percentiles in CloudWatch; buckets in Prometheus).
 * gauge: a level sampled now and then (maximum in CloudWatch).
 */
export type MetricKind = "counter" | "histogram" | "gauge";
/** CloudWatch units the catalog uses; time is emitted in milliseconds and exposed in seconds. */
export type MetricUnit = "Count" | "Milliseconds";

export interface MetricDefinition {
  /** The name in CloudWatch (EMF). */
  name: string;
  kind: MetricKind;
  unit: MetricUnit;
  /** Dimension (label) names, in order. */
  dimensions: readonly string[];
  help: string;
  /** Who emits it (services = the functions' POWERTOOLS_SERVICE_NAME; "runtime" = the local runtime). */
  emittedBy: readonly string[];
  /** Upper bounds of the Prometheus buckets, in the exposed unit (seconds for time). */
  buckets?: readonly number[];
}

/** Why a job failed, as few classes as an operator acts on differently. */
export const FAILURE_REASONS = [
  /** The document itself cannot be ingested (unsupported, empty, too large, malformed): the user fixes it. */
  "bad-input",
  /** A batch exhausted its retries and was dead-lettered: fix the cause, then redrive. */
  "dead-lettered",
  /** The upload URL was issued but nothing arrived before it expired. */
  "upload-missing",
  /** Anything else a stage gave up on (a bug, a permanent fault of a dependency). */
  "error",
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Kafka-triggered stages, the dimension of stage durations, batch sizes and retries. */
export const PIPELINE_STAGES = ["split", "embed", "index"] as const;

const SECONDS_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800] as const;
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
const SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] as const;

export const METRICS = {
  DocumentsAccepted: {
    name: "DocumentsAccepted",
    kind: "counter",
    unit: "Count",
    dimensions: ["service"],
    help: "Uploads accepted: jobs created by POST /uploads.",
    emittedBy: ["upload-url"],
  },
  DocumentsCompleted: {
    name: "DocumentsCompleted",
    kind: "counter",
    unit: "Count",
    dimensions: ["service"],
    help: "Jobs that reached COMPLETED (their document is searchable).",
    emittedBy: ["index"],
  },
  DocumentsFailed: {
    name: "DocumentsFailed",
    kind: "counter",
    unit: "Count",
    dimensions: ["reason"],
    help: `Jobs that reached FAILED, by reason class (${FAILURE_REASONS.join(", ")}).`,
    emittedBy: ["on-upload", "split", "embed", "index", "dead-letter", "sweeper"],
  },
  ChunksEmbedded: {
    name: "ChunksEmbedded",
    kind: "counter",
    unit: "Count",
    dimensions: ["service"],
    help: "Chunks embedded (each counted once, however often its batch is delivered).",
    emittedBy: ["embed"],
  },
  ChunksIndexed: {
    name: "ChunksIndexed",
    kind: "counter",
    unit: "Count",
    dimensions: ["service"],
    help: "Chunks written to index segments and counted on their jobs (each once).",
    emittedBy: ["index"],
  },
  TimeToSearchable: {
    name: "TimeToSearchable",
    kind: "histogram",
    unit: "Milliseconds",
    dimensions: ["service"],
    help: "From the upload landing (UPLOADED) to the job's COMPLETED.",
    emittedBy: ["index"],
    buckets: SECONDS_BUCKETS,
  },
  StageDuration: {
    name: "StageDuration",
    kind: "histogram",
    unit: "Milliseconds",
    dimensions: ["stage"],
    help: "Time a Kafka-triggered stage spent on one batch.",
    emittedBy: ["split", "embed", "index"],
    buckets: [...LATENCY_BUCKETS, 30, 60, 120, 300],
  },
  BatchSize: {
    name: "BatchSize",
    kind: "histogram",
    unit: "Count",
    dimensions: ["stage"],
    help: "Records in one batch a Kafka-triggered stage received.",
    emittedBy: ["split", "embed", "index"],
    buckets: SIZE_BUCKETS,
  },
  RecordsRetried: {
    name: "RecordsRetried",
    kind: "counter",
    unit: "Count",
    dimensions: ["stage"],
    help: "Records a stage handed back to its event source to be delivered again (transient faults).",
    emittedBy: ["split", "embed", "index"],
  },
  DeadLetters: {
    name: "DeadLetters",
    kind: "counter",
    unit: "Count",
    dimensions: ["service"],
    help: "Kafka batches that exhausted their retries and were written to the dead-letter bucket.",
    emittedBy: ["dead-letter"],
  },
  ConsumerLag: {
    name: "ConsumerLag",
    kind: "gauge",
    unit: "Count",
    dimensions: ["group", "topic", "partition"],
    help: "Records a consumer group is behind: the partition's end offset minus the group's committed offset.",
    emittedBy: ["runtime"],
  },
  SearchLatency: {
    name: "SearchLatency",
    kind: "histogram",
    unit: "Milliseconds",
    dimensions: ["mode", "stage"],
    help: "Search time by mode (hybrid, dense, bm25) and stage (manifest, embed, load, retrieve, rerank, total).",
    emittedBy: ["search"],
    buckets: LATENCY_BUCKETS,
  },
  SearchRequests: {
    name: "SearchRequests",
    kind: "counter",
    unit: "Count",
    dimensions: ["mode", "reranked"],
    help: "Searches answered, by mode and whether the cross-encoder reranked them (true/false).",
    emittedBy: ["search"],
  },
  IndexColdLoads: {
    name: "IndexColdLoads",
    kind: "counter",
    unit: "Count",
    dimensions: ["service"],
    help: "Index segments a search environment fetched from S3 (not yet in its cache).",
    emittedBy: ["search"],
  },
} as const satisfies Record<string, MetricDefinition>;

export type MetricName = keyof typeof METRICS;
export const METRIC_CATALOG: readonly MetricDefinition[] = Object.values(METRICS);

/** The dimension values a metric needs, by name. */
export type DimensionsOf<N extends MetricName> = {
  [D in (typeof METRICS)[N]["dimensions"][number]]: string;
};

const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();

/**
 * The Prometheus name of a catalog metric (or of any EMF metric, from its unit): namespace and
 * name in snake case, time in seconds, counters ending in `_total`
 * (TimeToSearchable → datadistiller_time_to_searchable_seconds).
 */
export function prometheusName(
  definition: Pick<MetricDefinition, "name" | "kind" | "unit">,
  namespace = METRIC_NAMESPACE,
): string {
  const base = `${namespace.toLowerCase()}_${snake(definition.name)}`;
  const unit = definition.unit === "Milliseconds" ? "_seconds" : "";
  return `${base}${unit}${definition.kind === "counter" ? "_total" : ""}`;
}

/** Time to searchable: from the upload landing (UPLOADED; the job's creation if it has no such stage) to `completedAt`. */
export function timeToSearchableMs(
  job: { stages: Partial<Record<string, string>>; createdAt: string },
  completedAt: Date,
): number {
  const from = Date.parse(job.stages.UPLOADED ?? job.createdAt);
  return Number.isNaN(from) ? Number.NaN : Math.max(0, completedAt.getTime() - from);
}
