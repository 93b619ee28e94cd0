import type { JobStore } from "../adapters/job-store.ts";
import { type ChunkGroup, type EmbeddedGroup, encodeVector, type IndexTarget } from "../domain/messages.ts";
import { batchCount, distinctGroups, liveGroups } from "./progress.ts";

export interface EmbedDeps {
  jobs: Pick<JobStore, "getMany" | "countBatches">;
  /** Passage vectors of `texts` with model `model` (its passage prefix, pooling, window). */
  embed: (texts: string[], model: string) => Promise<Float32Array[]>;
  /** The index new chunks of a collection go to: its active index and that index's model. */
  activeTarget: (tenant: string, collection: string) => Promise<IndexTarget>;
  publish: (groups: EmbeddedGroup[]) => Promise<void>;
}

/**
 * Embeds every chunk of a batch of groups, one batched model call per model, publishes the groups
 * with their vectors to chunks.embedded, and only then counts each group as embedded (once, by its
 * marker; the batch's markers and counters go in one transaction). Groups of a job that already
 * failed are dropped. A group says which index (and so which model) it is for; an upload's groups
 * say nothing, and are embedded for their collection's active index, which the published group
 * then names, so the index stage writes the vectors only where their model belongs.
 */
export async function embedGroups(
  groups: ChunkGroup[],
  deps: EmbedDeps,
): Promise<{ embedded: number; counted: number; skipped: number }> {
  const { live } = await liveGroups(distinctGroups(groups), deps.jobs);
  const targets = new Map<string, Promise<IndexTarget>>();
  const targeted = await Promise.all(
    live.map(async (group) => {
      if (group.target) return { ...group, target: group.target };
      const key = `${group.tenant}
${group.document.collection}`;
      if (!targets.has(key)) targets.set(key, deps.activeTarget(group.tenant, group.document.collection));
      return { ...group, target: await (targets.get(key) as Promise<IndexTarget>) };
    }),
  );
  const byModel = new Map<string, typeof targeted>();
  for (const group of targeted) byModel.set(group.target.model, [...(byModel.get(group.target.model) ?? []), group]);
  const embedded: EmbeddedGroup[] = [];
  let texts = 0;
  for (const [model, modelGroups] of byModel) {
    const batch = modelGroups.flatMap((group) => group.chunks.map((chunk) => chunk.text));
    const vectors = batch.length > 0 ? await deps.embed(batch, model) : [];
    texts += vectors.length;
    let next = 0;
    for (const group of modelGroups) {
      embedded.push({ ...group, vectors: group.chunks.map(() => encodeVector(vectors[next++] as Float32Array)) });
    }
  }
  await deps.publish(embedded);
  const counted = await deps.jobs.countBatches("embedded", live.map(batchCount));
  return {
    embedded: texts,
    // Chunks counted on their jobs by this call (a redelivered batch is embedded again, counted once).
    counted: counted.reduce((sum, batch) => sum + batch.chunks, 0),
    skipped: groups.length - live.length,
  };
}
