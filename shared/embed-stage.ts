import type { JobStore } from "./job-store.ts";
import { isTerminal } from "./jobs.ts";
import { type ChunkGroup, type EmbeddedGroup, encodeVector } from "./messages.ts";

export interface EmbedDeps {
  jobs: JobStore;
  embed: (texts: string[]) => Promise<Float32Array[]>;
  publish: (groups: EmbeddedGroup[]) => Promise<void>;
}

/**
 * Embeds every chunk of a batch of groups in one batched model call, publishes the groups with
 * their vectors to chunks.embedded, and only then counts each group as embedded (once, by its
 * marker). Groups of a job that already failed are dropped.
 */
export async function embedGroups(
  groups: ChunkGroup[],
  deps: EmbedDeps,
): Promise<{ embedded: number; skipped: number }> {
  const live = await liveGroups(groups, deps.jobs);
  const texts = live.flatMap((group) => group.chunks.map((chunk) => chunk.text));
  const vectors = texts.length > 0 ? await deps.embed(texts) : [];
  let next = 0;
  const embedded: EmbeddedGroup[] = live.map((group) => ({
    ...group,
    vectors: group.chunks.map(() => encodeVector(vectors[next++] as Float32Array)),
  }));
  await deps.publish(embedded);
  for (const group of live) await deps.jobs.countBatch(group.jobId, "embedded", group.groupId, group.chunks.length);
  return { embedded: texts.length, skipped: groups.length - live.length };
}

/** The groups whose job is still running, looking each job up once. */
export async function liveGroups<G extends { jobId: string }>(groups: G[], jobs: JobStore): Promise<G[]> {
  const running = new Map<string, boolean>();
  for (const jobId of new Set(groups.map((group) => group.jobId))) {
    const job = await jobs.get(jobId);
    running.set(jobId, job !== undefined && !isTerminal(job.state));
  }
  return groups.filter((group) => running.get(group.jobId));
}
