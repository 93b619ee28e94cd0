import type { BatchCount, JobStore } from "../adapters/job-store.ts";
import { isTerminal, type Job } from "../domain/jobs.ts";
import type { ChunkGroup } from "../domain/messages.ts";

/** Job bookkeeping the embed and index stages share. */

/** The groups whose job is still running, with the jobs as read (one round trip for the batch). */
export async function liveGroups<G extends { jobId: string }>(
  groups: G[],
  jobs: Pick<JobStore, "getMany">,
): Promise<{ live: G[]; running: Map<string, Job>; found: Map<string, Job> }> {
  const found = await jobs.getMany(groups.map((group) => group.jobId));
  const running = new Map([...found].filter(([, job]) => !isTerminal(job.state)));
  return { live: groups.filter((group) => running.has(group.jobId)), running, found };
}

/**
 * Each group once (the first of any repeats): at-least-once delivery and re-splits repeat groups,
 * within a batch as well as across batches (those the per-group markers absorb).
 */
export function distinctGroups<G extends { groupId: string }>(groups: G[]): G[] {
  const seen = new Set<string>();
  return groups.filter((group) => !seen.has(group.groupId) && seen.add(group.groupId));
}

/** A group as the batch its job counts. */
export const batchCount = (group: ChunkGroup): BatchCount => ({
  jobId: group.jobId,
  batchId: group.groupId,
  chunks: group.chunks.length,
});
