import { JOB_STATES } from "../../shared/domain/jobs.ts";
import type { DataDistillerClient, JobState, JobStatus } from "../api-client.ts";
import { formatAge, formatDuration, table } from "../format.ts";
import { note, out, print, printJson } from "../output.ts";

export function stateColor(state: JobState, colors = out): string {
  if (state === "COMPLETED") return colors.green(state);
  if (state === "FAILED") return colors.red(state);
  return colors.yellow(state);
}

const fraction = (part: number, total: number) => `${part}/${total}`;

export async function jobsCommand(
  client: DataDistillerClient,
  jobId: string | undefined,
  options: { json?: boolean; limit: number; cursor?: string; trace?: boolean },
) {
  if (jobId) {
    const job = await client.job(jobId);
    if (options.json) printJson(options.trace ? { ...job, trace: jobTrace(job) } : job);
    else print(options.trace ? formatTrace(job) : formatJob(job));
    return;
  }
  const page = await client.listJobs({ limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) });
  if (options.json) {
    printJson(page);
    return;
  }
  print(formatJobList(page.jobs));
  if (page.cursor) note(out.dim(`more jobs: --cursor ${page.cursor}`));
}

/** The tenant's jobs as a table, newest first as the API lists them. */
export function formatJobList(jobs: JobStatus[], now = Date.now()): string {
  if (jobs.length === 0) return "no jobs";
  return table(
    ["JOB", "STATE", "FILE", "EMBEDDED", "INDEXED", "UPDATED"],
    jobs.map((job) => [
      job.jobId,
      job.state + (job.stalled ? " (stalled)" : ""),
      job.filename,
      fraction(job.counts.chunksEmbedded, job.counts.chunksTotal),
      fraction(job.counts.chunksIndexed, job.counts.chunksTotal),
      formatAge(job.updatedAt, now),
    ]),
    { header: out.bold },
  );
}

/** One job in detail: counts, percentages, when it entered each state, why it failed. */
export function formatJob(job: JobStatus): string {
  const { chunksTotal, chunksEmbedded, chunksIndexed } = job.counts;
  const created = Date.parse(job.createdAt);
  const rows: Array<[string, string]> = [
    ["job", job.jobId],
    ["document", `${job.documentId} (collection ${job.collection})`],
    ["file", job.filename],
    ["state", stateColor(job.state) + (job.stalled ? out.red(" (stalled)") : "")],
    [
      "chunks",
      `${chunksTotal} total, ${chunksEmbedded} embedded (${job.percentages.embedded}%), ${chunksIndexed} indexed (${job.percentages.indexed}%)`,
    ],
    ["created", job.createdAt],
    ["updated", job.updatedAt],
  ];
  // The states the job went through, in pipeline order, with the time since it was created.
  for (const state of JOB_STATES) {
    const at = job.stages[state];
    if (at) rows.push([`  ${state}`, `${at}  ${out.dim(`+${formatDuration(Date.parse(at) - created)}`)}`]);
  }
  if (job.error) rows.push([job.state === "FAILED" ? "reason" : "warning", out.red(job.error)]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}

/** Which function moves a job into each state (the stage that did the work shown on that line). */
const MOVED_BY: Partial<Record<JobState, string>> = {
  PENDING_UPLOAD: "upload-url",
  UPLOADED: "on-upload",
  SPLITTING: "split",
  EMBEDDING: "split",
  INDEXING: "index",
  COMPLETED: "index",
};

export interface TraceStep {
  state: JobState;
  at: string;
  /** The function that moved the job into this state. */
  by?: string;
  /** Since the job was created. */
  sinceCreatedMs: number;
  /** Until the next state (undefined for the last one reached). */
  durationMs?: number;
}

/** A job's path through the stages: each state reached, by whom, when, and how long it stayed. */
export function jobTrace(job: Pick<JobStatus, "stages" | "createdAt" | "state">): TraceStep[] {
  const created = Date.parse(job.createdAt);
  const reached = JOB_STATES.flatMap((state) => {
    const at = job.stages[state];
    return at ? [{ state, at, time: Date.parse(at) }] : [];
  }).sort((a, b) => a.time - b.time);
  return reached.map(({ state, at, time }, i) => {
    const next = reached[i + 1];
    const by = state === "FAILED" ? undefined : MOVED_BY[state];
    return {
      state,
      at,
      ...(by ? { by } : {}),
      sinceCreatedMs: time - created,
      ...(next ? { durationMs: next.time - time } : {}),
    };
  });
}

/** `jobs <id> --trace`: the job's path through the stages, then where its log lines are. */
export function formatTrace(job: JobStatus): string {
  const steps = jobTrace(job);
  const rows = steps.map((step) => [
    stateColor(step.state),
    step.by ?? "",
    step.at,
    `+${formatDuration(step.sinceCreatedMs)}`,
    step.durationMs === undefined ? "" : formatDuration(step.durationMs),
  ]);
  const lines = [
    `job ${job.jobId}  ${job.filename}  (document ${job.documentId}, collection ${job.collection})`,
    table(["STATE", "BY", "AT", "SINCE CREATED", "IN STATE"], rows, { header: out.bold }),
  ];
  const uploaded = job.stages.UPLOADED;
  const completed = job.stages.COMPLETED;
  if (uploaded && completed) {
    lines.push(`time to searchable  ${formatDuration(Date.parse(completed) - Date.parse(uploaded))}`);
  }
  const { chunksTotal, chunksEmbedded, chunksIndexed } = job.counts;
  lines.push(`chunks  ${chunksTotal} total, ${chunksEmbedded} embedded, ${chunksIndexed} indexed`);
  if (job.error) lines.push(`${job.state === "FAILED" ? "reason" : "warning"}  ${out.red(job.error)}`);
  lines.push(
    out.dim(
      `logs: every function's JSON log lines name this job (jobId, or jobIds on a batch's line).\n` +
        `  AWS (CloudWatch Logs Insights over /aws/lambda/*): fields @timestamp, service, message | filter @message like "${job.jobId}" | sort @timestamp\n` +
        `  local (npm start): its output, e.g. npm start 2>&1 | grep ${job.jobId}`,
    ),
  );
  return lines.join("\n");
}
