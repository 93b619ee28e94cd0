import { describe, expect, it } from "vitest";
import { decodeVector, type EmbeddedGroup } from "../../shared/domain/messages.ts";
import { type EmbedDeps, embedGroups } from "../../shared/stages/embed.ts";
import { chunkGroup, vectorOf } from "./fakes/groups.ts";
import { InMemoryJobs, job } from "./fakes/stores.ts";

function harness(jobs: InMemoryJobs, publish?: EmbedDeps["publish"]) {
  const modelCalls: string[][] = [];
  const published: EmbeddedGroup[][] = [];
  const deps: EmbedDeps = {
    jobs,
    embed: async (texts) => {
      modelCalls.push(texts);
      return texts.map(vectorOf);
    },
    activeTarget: async () => ({ index: "1", model: "all-minilm-l6-v2-q" }),
    publish:
      publish ??
      (async (groups) => {
        published.push(groups);
      }),
  };
  return { deps, modelCalls, published };
}

describe("embed stage", () => {
  it("embeds every chunk of the batch in one model call, publishes one vector per chunk, then counts each group", async () => {
    const jobs = new InMemoryJobs(
      job("j1", "EMBEDDING", { chunksTotal: 5 }),
      job("j2", "EMBEDDING", { chunksTotal: 2 }),
    );
    const groups = [chunkGroup("j1", 0, 3), chunkGroup("j1", 1, 2), chunkGroup("j2", 0, 2)];
    const { deps, modelCalls, published } = harness(jobs);

    expect(await embedGroups(groups, deps)).toEqual({ embedded: 7, counted: 7, skipped: 0 });
    expect(modelCalls).toEqual([groups.flatMap((group) => group.chunks.map((chunk) => chunk.text))]);
    expect(published).toHaveLength(1);
    const [batch] = published as [EmbeddedGroup[]];
    expect(batch.map((group) => group.groupId)).toEqual(["j1:0", "j1:1", "j2:0"]);
    for (const [i, group] of batch.entries()) {
      expect(group.chunks).toEqual(groups[i]?.chunks);
      expect(group.vectors.map(decodeVector)).toEqual(group.chunks.map((chunk) => vectorOf(chunk.text)));
    }
    expect(jobs.jobs.get("j1")?.chunksEmbedded).toBe(5);
    expect(jobs.jobs.get("j2")?.chunksEmbedded).toBe(2);
    // Published before counted: a crash in between re-embeds on redelivery rather than losing a group.
    expect(jobs.calls).toEqual(["getMany", "countBatches"]);
    // A redelivered batch is embedded again but counts nothing (what ChunksEmbedded reports).
    expect(await embedGroups(groups, deps)).toMatchObject({ embedded: 7, counted: 0 });
    expect(jobs.jobs.get("j1")?.chunksEmbedded).toBe(5);
  });

  it("a redelivered batch is published again but counted once", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 4 }));
    const groups = [chunkGroup("j1", 0, 2), chunkGroup("j1", 1, 2)];
    const { deps, published } = harness(jobs);
    await embedGroups(groups, deps);
    await embedGroups(groups, deps);
    expect(published).toHaveLength(2);
    expect(jobs.jobs.get("j1")?.chunksEmbedded).toBe(4);
  });

  it("drops the groups of jobs that failed, completed or no longer exist", async () => {
    const jobs = new InMemoryJobs(
      job("live", "EMBEDDING", { chunksTotal: 1 }),
      job("failed", "FAILED", { chunksTotal: 1 }),
      job("done", "COMPLETED", { chunksTotal: 1 }),
    );
    const groups = ["live", "failed", "done", "gone"].map((jobId) => chunkGroup(jobId, 0, 1));
    const { deps, modelCalls, published } = harness(jobs);
    expect(await embedGroups(groups, deps)).toEqual({ embedded: 1, counted: 1, skipped: 3 });
    expect(modelCalls).toEqual([[groups[0]?.chunks[0]?.text]]);
    expect(published[0]?.map((group) => group.jobId)).toEqual(["live"]);
    expect(jobs.jobs.get("failed")?.chunksEmbedded).toBe(0);
  });

  it("runs no model when nothing in the batch is live", async () => {
    const jobs = new InMemoryJobs(job("failed", "FAILED"));
    const { deps, modelCalls } = harness(jobs);
    expect(await embedGroups([chunkGroup("failed", 0, 3)], deps)).toEqual({ embedded: 0, counted: 0, skipped: 1 });
    expect(modelCalls).toEqual([]);
  });

  it("counts nothing when publishing fails, so the retried batch is embedded and counted then", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 2 }));
    const groups = [chunkGroup("j1", 0, 2)];
    const broken = harness(jobs, async () => {
      throw new Error("broker unavailable");
    });
    await expect(embedGroups(groups, broken.deps)).rejects.toThrow("broker unavailable");
    expect(jobs.jobs.get("j1")?.chunksEmbedded).toBe(0);
    expect(jobs.markers.size).toBe(0);

    await embedGroups(groups, harness(jobs).deps);
    expect(jobs.jobs.get("j1")?.chunksEmbedded).toBe(2);
  });
});
