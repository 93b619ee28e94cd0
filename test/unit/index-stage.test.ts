import { describe, expect, it } from "vitest";
import { DEFAULT_COMPACTION_POLICY } from "../../shared/domain/compaction-policy.ts";
import type { ChunkGroup } from "../../shared/domain/messages.ts";
import { decodeSegment } from "../../shared/domain/segment.ts";
import { type IndexDeps, indexGroups, segmentKey } from "../../shared/stages/indexing.ts";
import { chunkGroup, embedded } from "./fakes/groups.ts";
import { InMemoryBlobs, InMemoryJobs, InMemoryManifests, job } from "./fakes/stores.ts";

function harness(jobs: InMemoryJobs, compaction?: IndexDeps["compaction"]) {
  const manifests = new InMemoryManifests();
  const blobs = new InMemoryBlobs();
  const sentToEmbed: ChunkGroup[] = [];
  const deps: IndexDeps = {
    jobs,
    manifests,
    blobs,
    ...(compaction ? { compaction } : {}),
    toEmbed: async (groups) => {
      sentToEmbed.push(...groups);
    },
  };
  /** Each listed segment's chunks, in manifest order. */
  const segmentsOf = async (collection = "default") => {
    const manifest = await manifests.get("acme", collection);
    return Promise.all(manifest.segments.map(async (ref) => decodeSegment(await blobs.read(ref.key)).allChunks()));
  };
  return { deps, manifests, blobs, segmentsOf, sentToEmbed };
}

describe("index stage", () => {
  it("writes one segment for the batch, lists it, counts the chunks and completes the job", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 5, chunksEmbedded: 5 }));
    const { deps, manifests, segmentsOf } = harness(jobs);
    const groups = [embedded(chunkGroup("j1", 0, 3)), embedded(chunkGroup("j1", 1, 2))];

    expect(await indexGroups(groups, deps)).toMatchObject({ indexed: 5, skipped: 0 });
    const manifest = await manifests.get("acme", "default");
    expect(manifest.segments).toHaveLength(1);
    const [ref] = manifest.segments;
    expect(ref?.key).toBe(segmentKey("acme", "default", ref?.id ?? ""));
    expect(ref?.chunks).toBe(5);
    const [segment] = await segmentsOf();
    expect(segment?.map((chunk) => chunk.chunkId).sort()).toEqual(
      groups.flatMap((group) => group.chunks.map((chunk) => chunk.chunkId)).sort(),
    );
    expect(segment?.every((chunk) => chunk.revision === "j1")).toBe(true);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 5 });
    expect(manifests.live.get("acme\ndoc-j1")?.id).toBe("j1");
  });

  it("a job whose chunks are not all indexed yet moves to INDEXING and stays there", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 5 }));
    const { deps, manifests } = harness(jobs);
    await indexGroups([embedded(chunkGroup("j1", 0, 3))], deps);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "INDEXING", chunksIndexed: 3 });
    expect(manifests.live.size).toBe(0);
    await indexGroups([embedded(chunkGroup("j1", 1, 2))], deps);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 5 });
  });

  it("a redelivered batch writes nothing new and counts nothing twice", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 4 }));
    const { deps, manifests, blobs } = harness(jobs);
    const groups = [embedded(chunkGroup("j1", 0, 2))];
    await indexGroups(groups, deps);
    const writes = blobs.writes;
    expect(await indexGroups(groups, deps)).toMatchObject({ indexed: 0, skipped: 1 });
    expect(blobs.writes).toBe(writes);
    expect((await manifests.get("acme", "default")).segments).toHaveLength(1);
    expect(jobs.jobs.get("j1")?.chunksIndexed).toBe(2);
  });

  it("a replay of a batch whose segment was written but not counted lists that segment once", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 2 }));
    const { deps, manifests } = harness(jobs);
    const groups = [embedded(chunkGroup("j1", 0, 2))];
    // The first attempt dies after writing and listing the segment, before the bookkeeping.
    const crashing: IndexDeps = {
      ...deps,
      jobs: {
        ...deps.jobs,
        getMany: deps.jobs.getMany.bind(jobs),
        uncounted: deps.jobs.uncounted.bind(jobs),
        countIndexed: async () => {
          throw new Error("throttled");
        },
      },
    };
    await expect(indexGroups(groups, crashing)).rejects.toThrow("throttled");
    await indexGroups(groups, deps);
    const manifest = await manifests.get("acme", "default");
    expect(manifest.segments).toHaveLength(1);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 2 });
  });

  it("skips the groups of failed jobs", async () => {
    const jobs = new InMemoryJobs(job("ok", "EMBEDDING", { chunksTotal: 1 }), job("bad", "FAILED", { chunksTotal: 1 }));
    const { deps, segmentsOf } = harness(jobs);
    const result = await indexGroups([embedded(chunkGroup("ok", 0, 1)), embedded(chunkGroup("bad", 0, 1))], deps);
    expect(result).toMatchObject({ indexed: 1, skipped: 1 });
    const chunks = (await segmentsOf()).flatMap((segment) => segment.map((chunk) => chunk.documentId));
    expect(chunks).toEqual(["doc-ok"]);
    expect(jobs.jobs.get("bad")?.chunksIndexed).toBe(0);
  });

  it("a newer upload of a document replaces the older: the old revision is tombstoned", async () => {
    const jobs = new InMemoryJobs(
      job("old", "EMBEDDING", { chunksTotal: 1, documentId: "report", createdAt: "2026-01-01T00:00:00.000Z" }),
      job("new", "EMBEDDING", { chunksTotal: 1, documentId: "report", createdAt: "2026-01-02T00:00:00.000Z" }),
    );
    const { deps, manifests, segmentsOf } = harness(jobs);
    await indexGroups([embedded(chunkGroup("old", 0, 1, "report"))], deps);
    expect((await manifests.get("acme", "default")).tombstones).toEqual([]);
    await indexGroups([embedded(chunkGroup("new", 0, 1, "report"))], deps);
    expect((await manifests.get("acme", "default")).tombstones).toEqual(["report@old"]);
    expect(manifests.live.get("acme\nreport")?.id).toBe("new");
    // Search hides the old revision's chunks at once; compaction drops them later.
    const revisions = (await segmentsOf()).map((segment) => [...new Set(segment.map((c) => c.revision))]);
    expect(revisions).toEqual([["old"], ["new"]]);
  });

  it("two uploads of one document in the same batch are written to separate segments", async () => {
    const jobs = new InMemoryJobs(
      job("a", "EMBEDDING", { chunksTotal: 1, documentId: "same" }),
      job("b", "EMBEDDING", { chunksTotal: 1, documentId: "same", createdAt: "2026-01-03T00:00:00.000Z" }),
    );
    const { deps, segmentsOf } = harness(jobs);
    await indexGroups([embedded(chunkGroup("a", 0, 1, "same")), embedded(chunkGroup("b", 0, 1, "same"))], deps);
    const revisions = (await segmentsOf()).map((segment) => [...new Set(segment.map((c) => c.revision))]);
    expect(revisions.sort()).toEqual([["a"], ["b"]]);
  });

  it("hands a collection to compaction once it has segments to merge, and never merges in the batch", async () => {
    const jobIds = ["j1", "j2", "j3", "j4"];
    const jobs = new InMemoryJobs(...jobIds.map((jobId) => job(jobId, "EMBEDDING", { chunksTotal: 2 })));
    const requested: string[] = [];
    const { deps, manifests, segmentsOf } = harness(jobs, {
      policy: { ...DEFAULT_COMPACTION_POLICY, factor: 4 },
      request: async (tenant, collection) => {
        requested.push(`${tenant}/${collection}`);
      },
    });
    for (const jobId of jobIds) await indexGroups([embedded(chunkGroup(jobId, 0, 2))], deps);
    // Four tier-0 segments make a merge: asked for after the fourth batch only.
    expect(requested).toEqual(["acme/default"]);
    expect((await manifests.get("acme", "default")).segments).toHaveLength(4);
    const chunkIds = (await segmentsOf()).flatMap((segment) => segment.map((chunk) => chunk.chunkId));
    expect(chunkIds.sort()).toEqual(jobIds.flatMap((jobId) => [`doc-${jobId}:0`, `doc-${jobId}:1`]).sort());
    expect(jobIds.map((jobId) => jobs.jobs.get(jobId)?.state)).toEqual(jobIds.map(() => "COMPLETED"));
  });

  it("a failed compaction request is reported, and the batch still succeeds", async () => {
    const jobIds = ["j1", "j2", "j3", "j4"];
    const jobs = new InMemoryJobs(...jobIds.map((jobId) => job(jobId, "EMBEDDING", { chunksTotal: 1 })));
    const errors: unknown[] = [];
    const { deps } = harness(jobs, {
      policy: { ...DEFAULT_COMPACTION_POLICY, factor: 2 },
      request: async () => {
        throw new Error("TooManyRequestsException");
      },
      onError: (error) => errors.push(error),
    });
    for (const jobId of jobIds) {
      expect(await indexGroups([embedded(chunkGroup(jobId, 0, 1))], deps)).toMatchObject({ indexed: 1, skipped: 0 });
    }
    expect(errors.length).toBeGreaterThan(0);
    expect(jobIds.map((jobId) => jobs.jobs.get(jobId)?.state)).toEqual(jobIds.map(() => "COMPLETED"));
  });

  it("asks for compaction only after the batch's bookkeeping: the revisions it completed are shown by then", async () => {
    const jobIds = ["j1", "j2"];
    const jobs = new InMemoryJobs(...jobIds.map((jobId) => job(jobId, "EMBEDDING", { chunksTotal: 1 })));
    const seen: { state: string | undefined; pending: string[] }[] = [];
    const { deps, manifests } = harness(jobs, {
      policy: { ...DEFAULT_COMPACTION_POLICY, factor: 2 },
      request: async (tenant, collection) => {
        seen.push({
          state: jobs.jobs.get("j2")?.state,
          pending: (await manifests.get(tenant, collection)).pending ?? [],
        });
      },
    });
    for (const jobId of jobIds) await indexGroups([embedded(chunkGroup(jobId, 0, 1))], deps);
    expect(seen).toEqual([{ state: "COMPLETED", pending: [] }]);
  });

  it("a duplicate indexed at the same time as its original leaves the completed job searchable", async () => {
    const jobs = new InMemoryJobs(
      job("j1", "EMBEDDING", { chunksTotal: 2 }),
      job("j2", "EMBEDDING", { chunksTotal: 1 }),
    );
    const { deps, manifests } = harness(jobs);
    const original = embedded(chunkGroup("j1", 0, 2));
    // The duplicate comes in another batch (another segment id) and lists its segment late: after the
    // original's invocation counted the group, completed j1 and made it searchable.
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let listing = () => {};
    const listingStarted = new Promise<void>((resolve) => {
      listing = resolve;
    });
    const late: IndexDeps = {
      ...deps,
      manifests: {
        get: (...args) => manifests.get(...args),
        collection: (...args) => manifests.collection(...args),
        addTombstone: (...args) => manifests.addTombstone(...args),
        replaceSegments: (...args) => manifests.replaceSegments(...args),
        promoteRevision: (...args) => manifests.promoteRevision(...args),
        revealRevisions: (...args) => manifests.revealRevisions(...args),
        addSegment: async (...args) => {
          listing();
          await gate;
          return manifests.addSegment(...args);
        },
      },
    };
    const duplicate = indexGroups([original, embedded(chunkGroup("j2", 0, 1))], late);
    await listingStarted;
    await indexGroups([original], deps);
    expect(jobs.jobs.get("j1")?.state).toBe("COMPLETED");
    release();
    await duplicate;
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 2 });
    // Nothing of j1 (or j2, completed by the duplicate's batch) is left hidden.
    expect((await manifests.get("acme", "default")).pending).toEqual([]);
  });

  it("a job turns COMPLETED only once its document is searchable (a client polling for it finds it)", async () => {
    const manifests = new InMemoryManifests();
    const hiddenWhenCompleted: boolean[] = [];
    class Observed extends InMemoryJobs {
      override async advance(...args: Parameters<InMemoryJobs["advance"]>) {
        const [jobId, state] = args;
        const { pending = [] } = await manifests.get("acme", "default");
        if (state === "COMPLETED") hiddenWhenCompleted.push(pending.includes(`doc-${jobId}@${jobId}`));
        return super.advance(...args);
      }
    }
    const jobs = new Observed(job("a", "EMBEDDING", { chunksTotal: 3 }), job("b", "EMBEDDING", { chunksTotal: 2 }));
    const deps: IndexDeps = { jobs, manifests, blobs: new InMemoryBlobs(), toEmbed: async () => {} };
    await indexGroups([embedded(chunkGroup("a", 0, 2))], deps);
    await indexGroups([embedded(chunkGroup("a", 1, 1)), embedded(chunkGroup("b", 0, 2))], deps);
    expect([jobs.jobs.get("a")?.state, jobs.jobs.get("b")?.state]).toEqual(["COMPLETED", "COMPLETED"]);
    expect(hiddenWhenCompleted).toEqual([false, false]);
  });

  it("completes a finished job with its count (no second write) once it is searchable", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 2 }));
    const { deps, manifests } = harness(jobs);
    const result = await indexGroups([embedded(chunkGroup("j1", 0, 2))], deps);
    expect(result.completed.map((completed) => completed.jobId)).toEqual(["j1"]);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 2 });
    expect(jobs.calls).not.toContain("completeIfDone");
    expect(manifests.live.get("acme\ndoc-j1")?.id).toBe("j1");
  });

  it("a job shown ahead of its count that failed meanwhile is hidden again", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 2 }));
    const { deps, manifests } = harness(jobs);
    // The dead-letter function fails the job between its reveal and the counting write, which the
    // failure cancels: the job is neither completed nor left finished.
    const failing: IndexDeps = {
      ...deps,
      jobs: {
        getMany: (...args) => jobs.getMany(...args),
        uncounted: (...args) => jobs.uncounted(...args),
        addWork: (...args) => jobs.addWork(...args),
        completeIfDone: (...args) => jobs.completeIfDone(...args),
        countIndexed: async (_batches, seen, options) => {
          await options?.beforeCompleting?.([...seen.values()]);
          await jobs.fail("j1", "a poison record");
          return { counted: [], finished: [], completed: [] };
        },
      },
    };
    const result = await indexGroups([embedded(chunkGroup("j1", 0, 2))], failing);
    expect(result.completed).toEqual([]);
    expect(jobs.jobs.get("j1")?.state).toBe("FAILED");
    expect((await manifests.get("acme", "default")).tombstones).toEqual(["doc-j1@j1"]);
  });

  it("a replay completes a job whose every chunk was counted by an invocation that stopped before completing it", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 2 }));
    const { deps, manifests } = harness(jobs);
    const groups = [embedded(chunkGroup("j1", 0, 2))];
    const stopping: IndexDeps = {
      ...deps,
      jobs: {
        getMany: (...args) => jobs.getMany(...args),
        uncounted: (...args) => jobs.uncounted(...args),
        // Counted without completing (as when the counting transaction is cancelled), then stopped.
        countIndexed: (batches, seen) => jobs.countIndexed(batches, seen),
        addWork: (...args) => jobs.addWork(...args),
        completeIfDone: async () => {
          throw new Error("timed out");
        },
      },
    };
    await expect(indexGroups(groups, stopping)).rejects.toThrow("timed out");
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "INDEXING", chunksIndexed: 2 });
    await indexGroups(groups, deps);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "COMPLETED", chunksIndexed: 2 });
    expect((await manifests.get("acme", "default")).pending).toEqual([]);
    expect(manifests.live.get("acme\ndoc-j1")?.id).toBe("j1");
  });
});
