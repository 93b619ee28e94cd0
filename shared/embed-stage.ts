import type { BatchCount, JobStore } from "./job-store.ts";
import { isTerminal, type Job } from "./jobs.ts";
import { type ChunkGroup, type EmbeddedGroup, encodeVector } from "./messages.ts";

export interface EmbedDeps {
  jobs: JobStore;
  embed: (texts: string[]) => Promise<Float32Array[]>;
  publish: (groups: EmbeddedGroup[]) => Promise<void>;
}

/**
 * Embeds every chunk of a batch of groups in one batched model call, publishes the groups with
 * their vectors to chunks.embedded, and only then counts each group as embedded (once, by its
 * marker; the batch's markers and counters go in one transaction). Groups of a job that already
 * failed are dropped.
 */
export async function embedGroups(
  groups: ChunkGroup[],
  deps: EmbedDeps,
): Promise<{ embedded: number; skipped: number }> {
  const { live } = await liveGroups(groups, deps.jobs);
  const texts = live.flatMap((group) => group.chunks.map((chunk) => chunk.text));
  const vectors = texts.length > 0 ? await deps.embed(texts) : [];
  let next = 0;
  const embedded: EmbeddedGroup[] = live.map((group) => ({
    ...group,
    vectors: group.chunks.map(() => encodeVector(vectors[next++] as Float32Array)),
  }));
  await deps.publish(embedded);
  await deps.jobs.countBatches("embedded", live.map(batchCount));
  return { embedded: texts.length, skipped: groups.length - live.length };
}

/** The groups whose job is still running, with those jobs as read (one round trip for the batch). */
export async function liveGroups<G extends { jobId: string }>(
  groups: G[],
  jobs: JobStore,
): Promise<{ live: G[]; running: Map<string, Job> }> {
  const found = await jobs.getMany(groups.map((group) => group.jobId));
  const running = new Map([...found].filter(([, job]) => !isTerminal(job.state)));
  return { live: groups.filter((group) => running.has(group.jobId)), running };
}

/** A group as the batch its job counts. */
export const batchCount = (group: ChunkGroup): BatchCount => ({
  jobId: group.jobId,
  batchId: group.groupId,
  chunks: group.chunks.length,
});
