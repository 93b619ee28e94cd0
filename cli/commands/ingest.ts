import cliProgress from "cli-progress";
import pMap from "p-map";
import { ApiError, type DataDistillerClient, type JobStatus, type UploadTicket } from "../api-client.ts";
import { describeError } from "../errors.ts";
import { expandFiles, type LocalFile } from "../files.ts";
import { formatBytes, table } from "../format.ts";
import { err, note, out, print, printJson } from "../output.ts";
import { uploadLocalFile } from "../upload.ts";
import { stateColor } from "./jobs.ts";

export interface IngestOptions {
  collection?: string;
  wait?: boolean;
  json?: boolean;
  /** Seconds to wait for all jobs with --wait. */
  timeout: number;
  /** Uploads in flight at once. */
  concurrency: number;
}

/** One file's way through the command. */
interface Item {
  file: LocalFile;
  ticket?: UploadTicket;
  /** The job's last view. */
  job?: JobStatus;
  /** Why it did not complete (upload refused, job failed, timed out). */
  reason?: string;
}

/** How progress is shown: bars on a terminal, lines on a pipe, nothing with --json. */
interface Progress {
  uploading(item: Item, sent: number): void;
  uploaded(item: Item): void;
  job(item: Item): void;
  failed(item: Item): void;
  stop(): void;
}

/**
 * Uploads files and globs in parallel through presigned uploads, then (with --wait) follows every
 * job to COMPLETED or FAILED. Resolves to true when every file made it.
 */
export async function ingestCommand(
  client: DataDistillerClient,
  patterns: string[],
  options: IngestOptions,
): Promise<boolean> {
  const files = await expandFiles(patterns);
  const items: Item[] = files.map((file) => ({ file }));
  const progress: Progress = options.json
    ? silentProgress
    : process.stderr.isTTY
      ? barProgress(items)
      : lineProgress(options.wait === true);
  const deadline = Date.now() + options.timeout * 1000;
  // Poll less often as the number of jobs grows, so following 200 files does not flood the API.
  const interval = Math.min(2000, 250 + 25 * items.length);

  // Uploads run `concurrency` at a time; each job is then followed on its own, so a slow job
  // never holds back the next upload.
  let aborted = false;
  const attempt = async (item: Item, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      // A rejected token or an unreachable API fails every file alike: stop with one error.
      if (isFatal(error)) {
        aborted = true;
        throw error;
      }
      item.reason = describeError(error, client.endpoint);
      progress.failed(item);
    }
  };
  const followers: Promise<void>[] = [];
  try {
    await pMap(
      items,
      (item) =>
        attempt(item, async () => {
          await upload(client, item, options.collection, progress);
          item.job = await client.job(item.ticket?.jobId ?? "");
          if (!options.wait) return;
          const following = attempt(item, () =>
            follow(client, item, { deadline, interval, progress, aborted: () => aborted }),
          );
          // Handled here too: if an upload fails fatally first, nobody awaits the followers.
          following.catch(() => {});
          followers.push(following);
        }),
      // The first fatal error stops new uploads.
      { concurrency: options.concurrency, stopOnError: true },
    );
    await Promise.all(followers);
  } finally {
    aborted = true;
    progress.stop();
  }

  if (options.json) printJson({ jobs: items.map(jobEntry) });
  else print(summary(items, options.wait === true));
  return items.every((item) => succeeded(item, options.wait === true));
}

const succeeded = (item: Item, wait: boolean) =>
  item.reason === undefined && item.job !== undefined && (!wait || item.job.state === "COMPLETED");

const isFatal = (error: unknown) =>
  (error instanceof ApiError && (error.status === 401 || error.status === 403)) ||
  (error instanceof TypeError && error.message === "fetch failed");

async function upload(client: DataDistillerClient, item: Item, collection: string | undefined, progress: Progress) {
  const { file } = item;
  item.ticket = await client.requestUpload({
    filename: file.filename,
    contentType: file.contentType,
    size: file.size,
    ...(collection ? { collection } : {}),
  });
  await uploadLocalFile(item.ticket.upload, file, (sent) => progress.uploading(item, sent));
  progress.uploaded(item);
}

async function follow(
  client: DataDistillerClient,
  item: Item,
  options: { deadline: number; interval: number; progress: Progress; aborted: () => boolean },
) {
  const { deadline, interval, progress } = options;
  while (!options.aborted()) {
    const job = item.job as JobStatus;
    progress.job(item);
    if (job.state === "COMPLETED") return;
    if (job.state === "FAILED") {
      item.reason = job.error ?? "failed";
      progress.failed(item);
      return;
    }
    if (Date.now() > deadline) {
      item.reason = `timed out waiting: still ${job.state}${job.error ? ` (${job.error})` : ""}`;
      progress.failed(item);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
    item.job = await client.job(job.jobId);
  }
}

/** The --json entry of one file: the job's final view, with the file and a failure reason. */
function jobEntry(item: Item) {
  const reason = item.reason ?? item.job?.error;
  if (item.job) return { file: item.file.path, ...item.job, ...(reason ? { reason } : {}) };
  return {
    file: item.file.path,
    filename: item.file.filename,
    ...(item.ticket ? { jobId: item.ticket.jobId, documentId: item.ticket.documentId } : {}),
    state: "FAILED",
    reason,
  };
}

function summary(items: Item[], wait: boolean): string {
  const rows = items.map((item) => [
    item.file.path,
    item.job ? item.job.state : "FAILED",
    item.job && item.job.counts.chunksTotal > 0 ? String(item.job.counts.chunksTotal) : "–",
    item.ticket?.documentId ?? "–",
    item.ticket?.jobId ?? "–",
  ]);
  const lines = [table(["FILE", "STATE", "CHUNKS", "DOCUMENT", "JOB"], rows, { header: out.bold }), ""];
  const good = items.filter((item) => succeeded(item, wait));
  const bad = items.filter((item) => !succeeded(item, wait));
  const verb = wait ? "completed" : "uploaded";
  lines.push(
    bad.length === 0
      ? out.green(`${good.length} ${verb}`)
      : `${out.green(`${good.length} ${verb}`)}, ${out.red(`${bad.length} failed`)}:`,
  );
  for (const item of bad) lines.push(`  ${item.file.path}: ${item.reason ?? item.job?.error ?? "failed"}`);
  if (!wait && good.length > 0) lines.push(out.dim("follow a job with: datadistiller jobs <jobId>"));
  return lines.join("\n");
}

const silentProgress: Progress = { uploading() {}, uploaded() {}, job() {}, failed() {}, stop() {} };

/** A line per step, for logs and pipes: uploaded, each new state, the end. */
function lineProgress(wait: boolean): Progress {
  const lastState = new Map<Item, string>();
  return {
    uploading() {},
    uploaded(item) {
      note(`${item.file.path}: uploaded ${formatBytes(item.file.size)} (job ${item.ticket?.jobId})`);
    },
    job(item) {
      const job = item.job as JobStatus;
      if (!wait || lastState.get(item) === job.state) return;
      lastState.set(item, job.state);
      const { chunksTotal, chunksEmbedded, chunksIndexed } = job.counts;
      const counts = chunksTotal > 0 ? ` (${chunksEmbedded}/${chunksTotal} embedded, ${chunksIndexed} indexed)` : "";
      note(`${item.file.path}: ${job.state}${counts}`);
    },
    failed(item) {
      note(`${item.file.path}: failed: ${item.reason}`);
    },
    stop() {},
  };
}

/** One bar per file: bytes while uploading, then chunks embedded and indexed. */
function barProgress(items: Item[]): Progress {
  const width = Math.min(32, Math.max(...items.map((item) => item.file.path.length)));
  const label = (item: Item) => {
    const path = item.file.path;
    return (path.length > width ? `…${path.slice(-(width - 1))}` : path).padEnd(width);
  };
  const multibar = new cliProgress.MultiBar(
    {
      format: " {name} {bar} {status}",
      barsize: 24,
      barCompleteChar: "█",
      barIncompleteChar: "░",
      stream: process.stderr,
      clearOnComplete: false,
      hideCursor: true,
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map(
    items.map((item) => [item, multibar.create(item.file.size, 0, { name: label(item), status: err.dim("waiting") })]),
  );
  const bar = (item: Item) => bars.get(item) as cliProgress.SingleBar;
  // Ctrl-C: leave the terminal as it was (cursor shown, bars drawn once more).
  const interrupted = () => {
    multibar.stop();
    process.exit(130);
  };
  process.once("SIGINT", interrupted);
  return {
    uploading(item, sent) {
      bar(item).update(sent, { status: `uploading ${formatBytes(sent)}/${formatBytes(item.file.size)}` });
    },
    uploaded(item) {
      bar(item).update(item.file.size, { status: `uploaded ${formatBytes(item.file.size)}` });
    },
    job(item) {
      const job = item.job as JobStatus;
      const { chunksTotal, chunksEmbedded, chunksIndexed } = job.counts;
      const status = `${stateColor(job.state, err)}${
        chunksTotal > 0 ? `  embedded ${chunksEmbedded}/${chunksTotal} · indexed ${chunksIndexed}/${chunksTotal}` : ""
      }${job.stalled ? err.red(" (stalled)") : ""}`;
      const total = Math.max(1, 2 * chunksTotal);
      bar(item).setTotal(total);
      bar(item).update(job.state === "COMPLETED" ? total : chunksEmbedded + chunksIndexed, { status });
    },
    failed(item) {
      bar(item).update({ status: err.red(`failed: ${item.reason}`) });
    },
    stop() {
      process.off("SIGINT", interrupted);
      multibar.stop();
    },
  };
}
