import { describe, expect, it } from "vitest";
import type { ChunkGroup, ReembedSegment } from "../../shared/domain/messages.ts";
import { decodeSegment } from "../../shared/domain/segment.ts";
import { fanOutReembeds, type IndexDeps, indexGroups } from "../../shared/stages/indexing.ts";
import { chunkGroup, embedded } from "./fakes/groups.ts";
import { InMemoryBlobs, InMemoryJobs, InMemoryManifests, job } from "./fakes/stores.ts";

const MINI = { index: "1", model: "all-minilm-l6-v2-q" };
const BGE = { index: "2", model: "bge-small-en-v1.5-q" };

function harness(jobs: InMemoryJobs) {
  const manifests = new InMemoryManifests();
  const blobs = new InMemoryBlobs();
  const sent: ChunkGroup[] = [];
  const deps: IndexDeps = {
    jobs,
    manifests,
    blobs,
    toEmbed: async (groups) => {
      sent.push(...groups);
    },
  };
  return { deps, manifests, blobs, sent };
}

const forIndex = (group: ChunkGroup, target: { index: string; model: string }) => ({ ...group, target });

describe("index stage with several indexes and models", () => {
  it("records the model in the index and in each segment's header", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 2 }));
    const { deps, manifests, blobs } = harness(jobs);
    await indexGroups([embedded(forIndex(chunkGroup("j1", 0, 2), BGE))], deps);
    const manifest = await manifests.get("acme", "default", "2");
    expect(manifest.model).toBe(BGE.model);
    const [ref] = manifest.segments;
    expect(ref?.key).toMatch(/^index\/acme\/default\/indexes\/2\/segments\//);
    expect(decodeSegment(await blobs.read(ref?.key ?? "")).header.model).toBe(BGE.model);
  });

  it("never lists vectors of one model in an index of another: the upload's groups go back to embedding", async () => {
    const jobs = new InMemoryJobs(
      job("j1", "EMBEDDING", { chunksTotal: 2 }),
      job("j2", "EMBEDDING", { chunksTotal: 2 }),
    );
    const { deps, manifests, sent } = harness(jobs);
    await indexGroups([embedded(forIndex(chunkGroup("j1", 0, 2), MINI))], deps);
    const stale = embedded(forIndex(chunkGroup("j2", 0, 2), { index: "1", model: BGE.model }));
    expect(await indexGroups([stale], deps)).toMatchObject({ indexed: 0, rerouted: 1 });
    expect((await manifests.get("acme", "default")).segments).toHaveLength(1);
    // Sent back without vectors or target, under the same group id (counted once when it lands).
    expect(sent).toHaveLength(1);
    expect(sent[0]).not.toHaveProperty("vectors");
    expect(sent[0]).not.toHaveProperty("target");
    expect(sent[0]?.groupId).toBe("j2:0");
    expect(jobs.jobs.get("j2")?.chunksIndexed).toBe(0);
  });

  it("sends an upload on to the collection's other index and completes its job only once it is in both", async () => {
    const jobs = new InMemoryJobs(job("j1", "EMBEDDING", { chunksTotal: 3, chunksEmbedded: 3 }));
    const { deps, manifests, sent } = harness(jobs);
    manifests.createIndex("acme", "default", "2", BGE.model);
    await indexGroups([embedded(forIndex(chunkGroup("j1", 0, 3), MINI))], deps);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ groupId: "j1:0>2", target: BGE, revision: "j1", copy: true, jobId: "j1" });
    expect(jobs.jobs.get("j1")).toMatchObject({ chunksTotal: 6, chunksIndexed: 3, state: "INDEXING" });

    // A replay adds nothing to the total.
    await indexGroups([embedded(forIndex(chunkGroup("j1", 0, 3), MINI))], deps);
    expect(jobs.jobs.get("j1")?.chunksTotal).toBe(6);

    // The copy lands in index 2 (not sent on again) and completes the job.
    const copy = sent[0] as ChunkGroup;
    await indexGroups([embedded(copy)], deps);
    expect(sent).toHaveLength(1);
    expect(jobs.jobs.get("j1")).toMatchObject({ chunksIndexed: 6, state: "COMPLETED" });
    const segments = (await manifests.get("acme", "default", "2")).segments;
    expect(segments).toHaveLength(1);
    expect(manifests.live.get("acme\ndoc-j1")?.id).toBe("j1");
  });

  it("counts and drops copies meant for an index that was dropped", async () => {
    const jobs = new InMemoryJobs(job("j1", "INDEXING", { chunksTotal: 4, chunksEmbedded: 4, chunksIndexed: 2 }));
    const { deps, manifests, sent } = harness(jobs);
    manifests.createIndex("acme", "default", "2", BGE.model);
    manifests.drop("acme", "default", "2");
    const copy = { ...forIndex(chunkGroup("j1", 0, 2), BGE), groupId: "j1:0>2", copy: true, revision: "j1" };
    expect(await indexGroups([embedded(copy)], deps)).toMatchObject({ indexed: 2, rerouted: 0 });
    expect(sent).toEqual([]);
    expect(jobs.jobs.get("j1")?.state).toBe("COMPLETED");
  });
});

describe("a migration's fan-out", () => {
  it("sends a segment's stored chunks, with their revision, in groups for the new index, under the migration's job", async () => {
    const jobs = new InMemoryJobs(
      job("j1", "EMBEDDING", { chunksTotal: 5 }),
      job("migration-x", "EMBEDDING", { chunksTotal: 5 }),
    );
    const { deps, manifests, sent } = harness(jobs);
    await indexGroups([embedded(forIndex(chunkGroup("j1", 0, 5), MINI))], deps);
    const [ref] = (await manifests.get("acme", "default")).segments;
    const request: ReembedSegment = {
      kind: "reembed",
      jobId: "migration-x",
      tenant: "acme",
      collection: "default",
      segment: { id: ref?.id ?? "", key: ref?.key ?? "", chunks: 5 },
      target: BGE,
    };
    expect(await fanOutReembeds([request], { ...deps, jobs, chunksPerGroup: 2 })).toEqual({ groups: 3, skipped: 0 });
    expect(sent.map((group) => group.chunks.length)).toEqual([2, 2, 1]);
    for (const group of sent) {
      expect(group).toMatchObject({ jobId: "migration-x", target: BGE, revision: "j1", copy: true });
      expect(group.document).toMatchObject({ documentId: "doc-j1", collection: "default", contentType: "text/plain" });
    }
    expect(sent.flatMap((group) => group.chunks.map((chunk) => chunk.text))).toEqual(
      chunkGroup("j1", 0, 5).chunks.map((chunk) => chunk.text),
    );
    // A replay sends the same group ids.
    const ids = sent.map((group) => group.groupId);
    await fanOutReembeds([request], { ...deps, jobs, chunksPerGroup: 2 });
    expect(sent.slice(3).map((group) => group.groupId)).toEqual(ids);

    // A segment that is gone fails the migration with the reason.
    await fanOutReembeds([{ ...request, segment: { ...request.segment, key: "gone" } }], {
      ...deps,
      jobs,
      chunksPerGroup: 2,
    });
    expect(jobs.jobs.get("migration-x")).toMatchObject({ state: "FAILED" });
    expect(jobs.jobs.get("migration-x")?.error).toMatch(/is gone/);
  });
});
