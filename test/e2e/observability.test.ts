/**
 * The pipeline's metrics end to end on the local platform: documents ingested through the API,
 * then GET /metrics read with Prometheus's own parser (prom2json, built from the Go module proxy)
 * and held to Prometheus's naming rules. The counters equal the jobs' own counts (as deltas:
 * the DynamoDB tables and topics are shared with the other e2e files of the run), and the
 * consumer lag of every partition returns to zero once the pipeline drains. Then the console's
 * Pipeline view in Chromium shows the same.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataDistillerClient, JobStatus } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { repoRoot } from "../../localstack/servers/paths.ts";
import { METRICS, type MetricName, prometheusName } from "../../shared/domain/metric-catalog.ts";
import { makeCorruptPdf, makeMarkdown, makeProsePages, makeUtf8Text } from "../fixtures/make-fixtures.ts";
import { startTestPlatform, tenantClient } from "../support/platform.ts";
import { type Prom2JsonFamily, prom2json } from "../support/prometheus-tools.ts";

let platform: Platform;
let api: DataDistillerClient;
const logs: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line), { withConsole: true });
  ({ client: api } = await tenantClient(platform, "metrics"));
}, 600_000);

afterAll(async () => {
  await platform?.stop();
  mkdirSync(join(repoRoot, "test-results"), { recursive: true });
  writeFileSync(join(repoRoot, "test-results/observability-e2e.log"), `${logs.join("\n")}\n`);
});

const metricsUrl = () => `${platform.runtime.apiUrl}/metrics`;

async function scrape(): Promise<{ text: string; families: Map<string, Prom2JsonFamily> }> {
  // Once more on a connection the server closed while it sat in the pool (idle keep-alive).
  const response = await fetch(metricsUrl()).catch(() => fetch(metricsUrl()));
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, families: new Map(prom2json(text).map((family) => [family.name, family])) };
}

/** The sum of a family's samples whose labels include `labels` (counters: value; histograms: count). */
function sum(families: Map<string, Prom2JsonFamily>, metric: MetricName, labels: Record<string, string> = {}) {
  const family = families.get(prometheusName(METRICS[metric]));
  return (family?.metrics ?? [])
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value))
    .reduce((total, sample) => total + Number(sample.value ?? sample.count ?? 0), 0);
}

/** Lag of every partition the runtime's event sources read, as GET /metrics reports it. */
const lagSeries = (families: Map<string, Prom2JsonFamily>) =>
  (families.get(prometheusName(METRICS.ConsumerLag))?.metrics ?? []).map((sample) => ({
    group: sample.labels?.group ?? "",
    topic: sample.labels?.topic ?? "",
    partition: sample.labels?.partition ?? "",
    lag: Number(sample.value),
  }));

async function drained(timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { families } = await scrape();
    const lags = lagSeries(families);
    if (lags.length > 0 && lags.every((series) => series.lag === 0)) return lags;
    if (Date.now() > until) return lags;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

const COUNTED = [
  ["DocumentsAccepted", {}],
  ["DocumentsCompleted", {}],
  ["DocumentsFailed", { reason: "bad-input" }],
  ["ChunksEmbedded", {}],
  ["ChunksIndexed", {}],
  ["TimeToSearchable", {}],
] as const;

describe("GET /metrics on the local runtime", () => {
  let before: Map<string, Prom2JsonFamily>;
  let jobs: JobStatus[];

  it("counts what the jobs count, read with Prometheus's parser, under Prometheus's naming rules", async () => {
    // Records an earlier file left in the shared topics are worked off first; counts are compared as deltas.
    await drained(120_000);
    before = (await scrape()).families;
    const files = [
      ...[0, 1, 2].map((i) => ({
        filename: `prose-${i}.txt`,
        contentType: "text/plain",
        bytes: makeUtf8Text(makeProsePages(1 + i, 8).join("\n\n")),
      })),
      { filename: "notes.md", contentType: "text/markdown", bytes: makeMarkdown() },
      // Bad input: fails its job at the split stage (DocumentsFailed{reason="bad-input"}).
      { filename: "broken.pdf", contentType: "application/pdf", bytes: makeCorruptPdf("garbage") },
    ];
    const tickets = await Promise.all(files.map((file) => api.ingest(file)));
    jobs = await Promise.all(
      tickets.map((ticket) => api.waitForJob(ticket.jobId, { timeoutMs: 300_000, intervalMs: 500 })),
    );
    const completed = jobs.filter((job) => job.state === "COMPLETED");
    expect(completed.map((job) => job.filename).sort()).toEqual([
      "notes.md",
      "prose-0.txt",
      "prose-1.txt",
      "prose-2.txt",
    ]);
    expect(jobs.find((job) => job.filename === "broken.pdf")?.state).toBe("FAILED");
    const expected: Record<string, number> = {
      DocumentsAccepted: jobs.length,
      DocumentsCompleted: completed.length,
      DocumentsFailed: 1,
      ChunksEmbedded: jobs.reduce((total, job) => total + job.counts.chunksEmbedded, 0),
      ChunksIndexed: jobs.reduce((total, job) => total + job.counts.chunksIndexed, 0),
      TimeToSearchable: completed.length,
    };
    expect(expected.ChunksIndexed).toBeGreaterThan(completed.length);

    // A function prints its EMF line as its invocation ends: the last ones may trail the job's state.
    const deltas = async () => {
      const { families } = await scrape();
      return Object.fromEntries(
        COUNTED.map(([metric, labels]) => [metric, sum(families, metric, labels) - sum(before, metric, labels)]),
      );
    };
    await expect.poll(deltas, { timeout: 30_000, interval: 1000 }).toEqual(expected);

    const { families } = await scrape();
    // Time to searchable: every completed job observed, each within its own upload-to-COMPLETED time.
    const tts = families.get(prometheusName(METRICS.TimeToSearchable));
    expect(tts?.type).toBe("HISTOGRAM");
    const longest = Math.max(
      ...completed.map(
        (job) => (Date.parse(job.stages.COMPLETED ?? "") - Date.parse(job.stages.UPLOADED ?? "")) / 1000,
      ),
    );
    const added = sum(families, "TimeToSearchable") - sum(before, "TimeToSearchable");
    const sumAdded =
      Number(tts?.metrics[0]?.sum ?? 0) -
      Number(before.get(prometheusName(METRICS.TimeToSearchable))?.metrics[0]?.sum ?? 0);
    expect(sumAdded / added).toBeGreaterThan(0);
    expect(sumAdded / added).toBeLessThanOrEqual(longest + 1);
    // The stages' own metrics, labelled by stage.
    for (const stage of ["split", "embed", "index"]) {
      expect(sum(families, "BatchSize", { stage }), stage).toBeGreaterThan(0);
      expect(sum(families, "StageDuration", { stage }), stage).toBeGreaterThan(0);
    }

    // Prometheus's naming rules (what `promtool check metrics` lints): snake case, counters end in
    // _total, every family says what it is.
    for (const [name, family] of families) {
      expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
      if (family.type === "COUNTER") expect(name).toMatch(/_total$/);
      expect(family.help, name).toBeTruthy();
    }
  }, 600_000);

  it("reports the lag of every partition of the three topics, back to zero once drained", async () => {
    const lags = await drained(60_000);
    const topics = new Set(lags.map((series) => series.topic));
    expect([...topics].sort()).toEqual(["chunks.embedded", "chunks.to-embed", "documents.uploaded"]);
    expect(lags.filter((series) => series.lag !== 0)).toEqual([]);
    // The same as the runtime measures it from Kafka (committed against end offsets).
    const measured = await platform.runtime.consumerLag();
    expect(measured.length).toBe(lags.length);
    for (const partition of measured) {
      // A partition no record ever reached has nothing committed (-1) and nothing to read.
      if (partition.committed === -1) expect(partition.end, `${partition.topic}/${partition.partition}`).toBe(0);
      else expect(partition.committed, `${partition.topic}/${partition.partition}`).toBe(partition.end);
    }
  }, 120_000);

  it("the console's Pipeline view shows the counts, the lag and time to searchable (Chromium)", async () => {
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(`${platform.runtime.apiUrl}/console/`);
      await page.getByTestId("tab-pipeline").click();
      const { families } = await scrape();
      const value = (testid: string) => page.getByTestId(testid).locator(".value").textContent();
      await expect
        .poll(() => value("stat-completed"), { timeout: 15_000 })
        .toBe(String(sum(families, "DocumentsCompleted")));
      expect(await value("stat-accepted")).toBe(String(sum(families, "DocumentsAccepted")));
      expect(Number(await value("stat-failed"))).toBe(sum(families, "DocumentsFailed"));
      expect(await value("stat-chunks")).toBe(String(sum(families, "ChunksIndexed")));
      expect(await value("stat-tts")).toMatch(/^[\d.]+ s \/ [\d.]+ s$/);
      const rows = page.getByTestId("lag-row");
      expect(await rows.count()).toBe(lagSeries(families).length);
      expect(await page.getByTestId("pipeline-lag-total").textContent()).toMatch(/documents\.uploaded: 0/);
      // A second scrape gives the charts their first point.
      await expect
        .poll(() => page.getByTestId("chart-throughput").locator("polyline").first().getAttribute("points"), {
          timeout: 15_000,
        })
        .toMatch(/\d/);
      if (process.env.UPDATE_SCREENSHOT) {
        await page.screenshot({ path: join(repoRoot, "docs", "console-pipeline.png"), fullPage: true });
      }
      expect(errors).toEqual([]);
    } finally {
      await browser?.close();
    }
  }, 120_000);
});
