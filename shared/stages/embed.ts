import type { JobStore } from "../adapters/job-store.ts";
import { type ChunkGroup, type EmbeddedGroup, encodeVector } from "../domain/messages.ts";
import { batchCount, distinctGroups, liveGroups } from "./progress.ts";

export interface EmbedDeps {
  jobs: Pick<JobStore, "getMany" | "countBatches">;
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
  const { live } = await liveGroups(distinctGroups(groups), deps.jobs);
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
