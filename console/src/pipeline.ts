/**
 * The Pipeline view: what the local runtime's GET /metrics says, refreshed every few seconds while
 * the tab is open: documents accepted / completed / failed, consumer lag per stage and partition,
 * throughput and error charts, dead letters and time to searchable. In AWS the API has no
 * /metrics (the CloudWatch dashboard shows the same metrics), and the view says so.
 */
import { byTestId, errorMessage, h, replace } from "./dom.ts";
import { type PipelineSnapshot, ratesPerMinute, snapshot, sparkline } from "./pipeline-model.ts";

const REFRESH_MS = 2_000;
const HISTORY = 90;

export class PipelinePanel {
  private timer: ReturnType<typeof setInterval> | undefined;
  private last: PipelineSnapshot | undefined;
  private readonly history: { completed: number; chunksIndexed: number; failed: number }[] = [];

  constructor(
    private readonly endpoint: string,
    private readonly root: HTMLElement,
    /** Dead letters waiting for a redrive (the dead-letter API's count, for the caller's tenant). */
    private readonly pendingDeadLetters: () => number,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    const status = byTestId("pipeline-status", this.root);
    const error = byTestId("pipeline-error", this.root);
    let text: string;
    try {
      const response = await fetch(new URL("/metrics", this.endpoint), { headers: { accept: "text/plain" } });
      if (response.status === 404) {
        throw new Error(
          "This API serves no /metrics: the local runtime does (npm start); in AWS the CloudWatch dashboard shows these metrics.",
        );
      }
      if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
      text = await response.text();
    } catch (caught) {
      error.hidden = false;
      error.textContent = errorMessage(caught);
      status.textContent = "";
      return;
    }
    error.hidden = true;
    const now = snapshot(text);
    if (this.last) {
      this.history.push(ratesPerMinute(this.last, now));
      if (this.history.length > HISTORY) this.history.shift();
    }
    this.last = now;
    this.render(now);
    status.textContent = `from ${new URL("/metrics", this.endpoint).href} · updated ${new Date(now.at).toLocaleTimeString()}`;
  }

  private render(now: PipelineSnapshot): void {
    const seconds = (value: number | undefined) =>
      value === undefined ? "–" : `${value.toFixed(value < 10 ? 1 : 0)} s`;
    const card = (testid: string, label: string, value: string | number, title?: string) =>
      h("div", { class: "stat", testid, ...(title ? { title } : {}) }, h("span", { class: "value" }, value), label);
    const failedTitle = Object.entries(now.failed)
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => `${reason}: ${count}`)
      .join(", ");
    replace(
      byTestId("pipeline-stats", this.root),
      card("stat-accepted", "accepted", now.accepted),
      card("stat-completed", "completed", now.completed),
      card("stat-failed", "failed", now.failedTotal, failedTitle || "no failures"),
      card("stat-chunks", "chunks indexed", now.chunksIndexed, `${now.chunksEmbedded} embedded`),
      card(
        "stat-tts",
        "time to searchable p50 / p95",
        `${seconds(now.timeToSearchable.p50)} / ${seconds(now.timeToSearchable.p95)}`,
        `${now.timeToSearchable.count} jobs completed`,
      ),
      card(
        "stat-dead-letters",
        "dead letters waiting",
        this.pendingDeadLetters(),
        `${now.deadLetters} batches dead-lettered since the runtime started; ${now.retried} records retried`,
      ),
    );
    replace(
      byTestId("pipeline-lag", this.root),
      ...now.lag.map((row) =>
        h(
          "tr",
          { testid: "lag-row", attrs: { "data-topic": row.topic, "data-partition": row.partition } },
          h("td", {}, row.group),
          h("td", {}, row.topic),
          h("td", {}, row.partition),
          h("td", { class: row.lag > 0 ? "behind" : "" }, row.lag),
        ),
      ),
    );
    byTestId("pipeline-lag-total", this.root).textContent = [...now.lagByTopic]
      .map(([topic, lag]) => `${topic}: ${lag}`)
      .join(" · ");
    const chart = (testid: string, title: string, series: { label: string; values: number[]; class: string }[]) => {
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 300 60");
      svg.setAttribute("preserveAspectRatio", "none");
      for (const line of series) {
        const polyline = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
        polyline.setAttribute("points", sparkline(line.values, 300, 60));
        polyline.setAttribute("class", line.class);
        svg.appendChild(polyline);
      }
      const latest = series.map((line) => `${line.label} ${(line.values.at(-1) ?? 0).toFixed(0)}/min`).join(" · ");
      return h(
        "figure",
        { class: "chart", testid },
        h("figcaption", {}, title, h("span", { class: "muted" }, latest)),
        svg,
      );
    };
    replace(
      byTestId("pipeline-charts", this.root),
      chart("chart-throughput", "Throughput", [
        { label: "documents", values: this.history.map((rates) => rates.completed), class: "ok" },
        { label: "chunks", values: this.history.map((rates) => rates.chunksIndexed), class: "accent" },
      ]),
      chart("chart-errors", "Failures", [
        { label: "failed", values: this.history.map((rates) => rates.failed), class: "bad" },
      ]),
    );
  }
}
