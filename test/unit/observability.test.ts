import { Registry } from "prom-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { histogram, parseExposition, quantile, total } from "../../console/src/prometheus.ts";
import { describeByUnit, EmfPrometheus, parseEmf } from "../../localstack/emulator/emf-metrics.ts";
import { localMetricDescriptions } from "../../localstack/platform/settings.ts";
import { PipelineMetrics } from "../../shared/adapters/metrics.ts";
import { METRIC_CATALOG, METRICS, prometheusName } from "../../shared/domain/metric-catalog.ts";

/** What PipelineMetrics printed (Powertools writes EMF documents to stdout). */
function captureStdout(work: () => void): string[] {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    lines.push(...String(chunk).split("\n").filter(Boolean));
    return true;
  });
  try {
    work();
  } finally {
    spy.mockRestore();
  }
  return lines;
}

afterEach(() => vi.restoreAllMocks());

describe("the metric catalog", () => {
  it("names every metric once, with Prometheus names the emulator's unit rule agrees with", () => {
    const names = METRIC_CATALOG.map((metric) => metric.name);
    expect(new Set(names).size).toBe(names.length);
    expect(prometheusName(METRICS.TimeToSearchable)).toBe("datadistiller_time_to_searchable_seconds");
    expect(prometheusName(METRICS.DocumentsCompleted)).toBe("datadistiller_documents_completed_total");
    expect(prometheusName(METRICS.ConsumerLag)).toBe("datadistiller_consumer_lag");
    for (const metric of METRIC_CATALOG.filter(
      (m) => m.kind !== "gauge" && (m.kind === "counter") === (m.unit === "Count"),
    )) {
      const byUnit = describeByUnit({
        namespace: "DataDistiller",
        name: metric.name,
        unit: metric.unit,
        dimensions: {},
      });
      expect(byUnit.prometheusName).toBe(prometheusName(metric));
    }
  });
});

describe("EMF from the functions, Prometheus on the local runtime", () => {
  it("turns Powertools' EMF lines into counters, labelled counters and second-based histograms", async () => {
    const index = new PipelineMetrics("index");
    const split = new PipelineMetrics("split");
    const lines = captureStdout(() => {
      index.add("DocumentsCompleted", 2).add("ChunksIndexed", 40).add("TimeToSearchable", 1500);
      index.add("TimeToSearchable", 4000).add("StageDuration", 250, { stage: "index" });
      index.publish();
      split.add("DocumentsFailed", 1, { reason: "bad-input" }).add("DocumentsFailed", 1, { reason: "error" });
      split.add("DocumentsFailed", 1, { reason: "bad-input" });
      split.publish();
      split.publish(); // nothing left: prints nothing
    });
    // One EMF line per set of dimension values; exactly the catalog's dimensions, no implicit "service" elsewhere.
    expect(lines).toHaveLength(4);
    const samples = lines.flatMap(parseEmf);
    const failed = samples.filter((sample) => sample.name === "DocumentsFailed");
    expect(failed.map((sample) => sample.dimensions)).toEqual([{ reason: "bad-input" }, { reason: "error" }]);
    expect(samples.find((sample) => sample.name === "TimeToSearchable")).toMatchObject({
      unit: "Milliseconds",
      dimensions: { service: "index" },
      values: [1500, 4000],
    });

    const registry = new Registry();
    const emf = new EmfPrometheus(registry, localMetricDescriptions);
    for (const line of lines) emf.ingest(`[index] ${line}`);
    emf.ingest("a log line that is not EMF");
    emf.ingest('{"_aws": "not a directive"}');
    const scrape = parseExposition(await registry.metrics());
    expect(total(scrape, "datadistiller_documents_completed_total")).toBe(2);
    expect(total(scrape, "datadistiller_chunks_indexed_total", { service: "index" })).toBe(40);
    expect(total(scrape, "datadistiller_documents_failed_total", { reason: "bad-input" })).toBe(2);
    expect(total(scrape, "datadistiller_documents_failed_total")).toBe(3);
    // Declared but never emitted: exposed at 0 from the start.
    expect(scrape.families.get("datadistiller_documents_accepted_total")?.type).toBe("COUNTER");
    const tts = histogram(scrape, "datadistiller_time_to_searchable_seconds");
    expect(tts.count).toBe(2);
    expect(quantile(0.5, tts.buckets)).toBeGreaterThan(1);
    expect(quantile(0.5, tts.buckets)).toBeLessThanOrEqual(2);
    // Milliseconds in EMF, seconds in Prometheus.
    const json = await registry.getMetricsAsJSON();
    const sums = (name: string) =>
      json
        .find((metric) => metric.name === name)
        ?.values.filter((value) => (value as { metricName?: string }).metricName?.endsWith("_sum"));
    expect(sums("datadistiller_time_to_searchable_seconds")?.[0]?.value).toBeCloseTo(5.5, 9);
    expect(sums("datadistiller_stage_duration_seconds")?.[0]).toMatchObject({
      labels: { stage: "index" },
      value: 0.25,
    });
  });

  it("rejects dimensions a metric needs but was not given", () => {
    const metrics = new PipelineMetrics("split") as unknown as { add: (n: string, v: number) => unknown };
    expect(() => metrics.add("DocumentsFailed", 1)).toThrow(/reason/);
  });

  it("names metrics it was not told about by their unit", async () => {
    const registry = new Registry();
    const emf = new EmfPrometheus(registry);
    emf.ingest(
      JSON.stringify({
        _aws: {
          Timestamp: 0,
          CloudWatchMetrics: [
            { Namespace: "Shop", Dimensions: [["service"]], Metrics: [{ Name: "OrderLatency", Unit: "Seconds" }] },
          ],
        },
        service: "orders",
        OrderLatency: [0.2, 0.3],
      }),
    );
    const scrape = parseExposition(await registry.metrics());
    expect(histogram(scrape, "shop_order_latency_seconds").count).toBe(2);
  });
});

describe("quantiles from cumulative buckets", () => {
  it("interpolates within the bucket like histogram_quantile", () => {
    const buckets: [number, number][] = [
      [1, 10],
      [2, 20],
      [Number.POSITIVE_INFINITY, 20],
    ];
    expect(quantile(0.5, buckets)).toBe(1);
    expect(quantile(0.75, buckets)).toBe(1.5);
    expect(quantile(0.5, [[1, 0]])).toBeUndefined();
  });
});

describe("failures counted by reason class", () => {
  it("counts a job once, by the call that moved it to FAILED", async () => {
    const { countingFailures } = await import("../../shared/adapters/metrics.ts");
    const states = new Map([["j1", "SPLITTING"]]);
    const store = {
      others: 0,
      async fail(jobId: string) {
        if (states.get(jobId) === "FAILED" || !states.has(jobId)) return false;
        states.set(jobId, "FAILED");
        return true;
      },
      other() {
        return ++this.others;
      },
    };
    const metrics = new PipelineMetrics("split");
    const counted = countingFailures(store, metrics, "bad-input");
    expect(await counted.fail("j1")).toBe(true);
    expect(await counted.fail("j1")).toBe(false); // a replay
    expect(await counted.fail("missing")).toBe(false);
    expect(counted.other()).toBe(1); // everything else is the store's own, bound to it
    const lines = captureStdout(() => metrics.publish());
    expect(lines.flatMap(parseEmf)).toMatchObject([
      { name: "DocumentsFailed", dimensions: { reason: "bad-input" }, values: [1] },
    ]);
  });
});

describe("correlation ids in the Kafka stages' logs", () => {
  it("names the batch by topic-partition and offsets, and the jobs, documents and tenants of its records", async () => {
    const { batchId, correlationIds } = await import("../../functions/middleware.ts");
    expect(
      batchId({ "chunks.to-embed-3": [{ offset: 120 }, { offset: 139 }], "chunks.to-embed-4": [{ offset: 7 }] }),
    ).toBe("chunks.to-embed-3@120-139,chunks.to-embed-4@7-7");
    expect(
      correlationIds([
        { jobId: "j1", tenant: "acme", document: { documentId: "d1" } },
        { jobId: "j1", tenant: "acme", document: { documentId: "d1" } },
        { jobId: "j2", tenant: "beta", document: { documentId: "d2" } },
        { jobId: 3 },
      ]),
    ).toEqual({ jobIds: ["j1", "j2"], documentIds: ["d1", "d2"], tenants: ["acme", "beta"] });
  });
});
