/** The jobs list: one row per upload, polled every half second until it completes or fails. */
import { ApiError, type ConsoleApi, contentTypeOf, type JobStatus, uploadWithProgress } from "./api.ts";
import { duration, errorMessage, h, replace } from "./dom.ts";
import { pollTick, TERMINAL } from "./polling.ts";

const POLL_MS = 500;
/** Stage durations shown on a row: from the first state's timestamp to the second's. */
const PHASES: Array<[string, string, string]> = [
  ["upload", "PENDING_UPLOAD", "UPLOADED"],
  ["split", "UPLOADED", "EMBEDDING"],
  ["embed", "EMBEDDING", "INDEXING"],
  ["index", "INDEXING", "COMPLETED"],
];

interface Row {
  element: HTMLLIElement;
  job?: JobStatus;
  filename: string;
  /** 0..1 while the browser is sending the file. */
  uploading?: number;
  localError?: string;
  deleted?: boolean;
  polling: boolean;
}

export class JobsPanel {
  private readonly rows = new Map<string, Row>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private localIds = 0;

  constructor(
    private readonly api: ConsoleApi,
    private readonly list: HTMLElement,
    private readonly empty: HTMLElement,
    private readonly onSettled: (job: JobStatus) => void = () => {},
  ) {}

  /** Shows the tenant's recent jobs (GET /jobs); running ones are polled. */
  async loadRecent(): Promise<void> {
    const { jobs } = await this.api.listJobs();
    for (const job of jobs.slice(0, 50)) {
      if (this.rows.has(job.jobId)) continue;
      const row = this.addRow(job.jobId, job.filename, "end");
      row.job = job;
      this.render(row);
    }
    this.ensurePolling();
  }

  /** Uploads files one after another: ask the API for a presigned upload, send the bytes to S3, watch the job. */
  async upload(files: File[], collection: string | undefined): Promise<void> {
    for (const file of files) {
      const contentType = contentTypeOf(file);
      if (!contentType) {
        this.addError(file.name, "not a PDF, text, Markdown or HTML file");
        continue;
      }
      let ticket: Awaited<ReturnType<ConsoleApi["requestUpload"]>>;
      try {
        ticket = await this.api.requestUpload({
          filename: file.name,
          contentType,
          size: file.size,
          ...(collection ? { collection } : {}),
        });
      } catch (error) {
        this.addError(file.name, errorMessage(error));
        continue;
      }
      const row = this.addRow(ticket.jobId, file.name, "start");
      row.uploading = 0;
      this.render(row);
      try {
        await uploadWithProgress(ticket.upload, file, (fraction) => {
          row.uploading = fraction;
          this.render(row);
        });
        row.uploading = undefined;
        this.render(row);
        this.ensurePolling();
      } catch (error) {
        row.uploading = undefined;
        row.localError = `upload failed: ${errorMessage(error)}`;
        this.render(row);
      }
    }
  }

  private addError(filename: string, message: string): void {
    const row = this.addRow(`local-${++this.localIds}`, filename, "start");
    row.localError = message;
    this.render(row);
  }

  private addRow(id: string, filename: string, where: "start" | "end"): Row {
    this.rows.get(id)?.element.remove(); // listed by GET /jobs while its upload was starting
    const element = h("li", { class: "job", testid: "job", attrs: { "data-job-id": id } });
    const row: Row = { element, filename, polling: false };
    this.rows.set(id, row);
    if (where === "start") this.list.prepend(element);
    else this.list.append(element);
    this.empty.hidden = true;
    return row;
  }

  private ensurePolling(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    void this.poll();
  }

  private async poll(): Promise<void> {
    const { due, idle } = pollTick(this.rows);
    if (idle) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    await Promise.all(
      due.map(async (jobId) => {
        const row = this.rows.get(jobId);
        if (!row) return;
        row.polling = true;
        try {
          row.job = await this.api.job(jobId);
          this.render(row);
          if (TERMINAL.has(row.job.state)) this.onSettled(row.job);
        } catch (error) {
          // A refusal (4xx) ends this row; a transient fault (network, 5xx) is asked again next tick.
          if (!(error instanceof ApiError) || error.status >= 500) return;
          row.localError = errorMessage(error);
          this.render(row);
        } finally {
          row.polling = false;
        }
      }),
    );
  }

  private render(row: Row): void {
    const { job } = row;
    const state = row.localError
      ? "ERROR"
      : row.uploading !== undefined
        ? "UPLOADING"
        : row.deleted
          ? "DELETED"
          : (job?.state ?? "…");
    row.element.dataset.state = state;
    const counts = job?.counts;
    const total = counts?.chunksTotal ?? 0;
    let embedded = 0;
    let indexed = 0;
    if (row.uploading !== undefined) indexed = row.uploading * 100;
    else if (state === "COMPLETED" || state === "DELETED" || state === "FAILED" || state === "ERROR") {
      indexed = embedded = 100;
    } else if (job) {
      embedded = job.percentages.embedded;
      indexed = job.percentages.indexed;
    }
    const busy = (state === "UPLOADED" || state === "SPLITTING" || state === "PENDING_UPLOAD") && total === 0;
    const bar = h(
      "div",
      {
        class: `bar${busy ? " busy" : ""}`,
        testid: "job-bar",
        attrs: {
          role: "progressbar",
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": String(Math.round(indexed)),
        },
      },
      h("div", { class: "fill embedded", attrs: { style: `width:${embedded}%` } }),
      h("div", { class: "fill indexed", attrs: { style: `width:${indexed}%` } }),
    );
    const meta: string[] = [];
    if (row.uploading !== undefined) meta.push(`uploading to S3 ${Math.round(row.uploading * 100)}%`);
    else if (counts && total > 0) {
      meta.push(
        `${total} chunk${total === 1 ? "" : "s"} · ${counts.chunksEmbedded} embedded · ${counts.chunksIndexed} indexed`,
      );
    }
    if (job) {
      meta.push(...phaseTimes(job));
      if (job.collection && job.collection !== "default") meta.push(`collection ${job.collection}`);
    }
    const error = row.localError ?? (job?.state === "FAILED" || job?.stalled ? job.error : undefined);
    const canDelete = job?.state === "COMPLETED" && !row.deleted;
    replace(
      row.element,
      h(
        "div",
        { class: "job-head" },
        h("span", { class: "job-name", testid: "job-filename", title: job?.documentId ?? "" }, row.filename),
        job?.stalled ? h("span", { class: "badge stalled", testid: "job-stalled" }, "STALLED") : null,
        h("span", { class: `badge state-${state.toLowerCase()}`, testid: "job-state" }, state),
      ),
      bar,
      h(
        "div",
        { class: "job-meta", testid: "job-progress" },
        ...meta.flatMap((item, i) => [i > 0 ? " · " : null, h("span", {}, item)]),
        canDelete
          ? h(
              "button",
              {
                class: "link",
                testid: "job-delete",
                title: "DELETE /documents/{id}: remove this document from search",
                on: { click: () => void this.deleteDocument(row) },
              },
              "delete",
            )
          : null,
      ),
      error ? h("div", { class: "job-error", testid: "job-error" }, error) : null,
    );
  }

  private async deleteDocument(row: Row): Promise<void> {
    if (!row.job || !confirm(`Remove ${row.filename} from search?`)) return;
    try {
      await this.api.deleteDocument(row.job.documentId);
      row.deleted = true;
    } catch (error) {
      row.localError = errorMessage(error);
    }
    this.render(row);
  }
}

/** ["upload 0.1 s", "split 0.2 s", "embed 2.3 s", "index 0.4 s", "total 3.0 s"] from the stage timestamps. */
function phaseTimes(job: JobStatus): string[] {
  const at = (state: string) => {
    const stamp = job.stages[state as keyof JobStatus["stages"]];
    return stamp ? Date.parse(stamp) : undefined;
  };
  const parts: string[] = [];
  for (const [name, from, to] of PHASES) {
    const start = at(from);
    const end = at(to);
    if (start !== undefined && end !== undefined && end >= start) parts.push(`${name} ${duration(end - start)}`);
  }
  const began = at("PENDING_UPLOAD") ?? Date.parse(job.createdAt);
  const ended = at("COMPLETED") ?? at("FAILED");
  if (ended !== undefined) parts.push(`total ${duration(ended - began)}`);
  else if (!job.stalled) parts.push(`running ${duration(Date.now() - began)}`);
  return parts;
}
