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
  options: { json?: boolean; limit: number; cursor?: string },
) {
  if (jobId) {
    const job = await client.job(jobId);
    if (options.json) printJson(job);
    else print(formatJob(job));
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
