import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobsTable } from "../../localstack/platform/jobs-table.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import {
  IndexGone,
  ManifestConflict,
  type Migration,
  ModelMismatch,
  type SegmentRef,
} from "../../shared/domain/manifest.ts";
import { dynamoClient, uniqueName } from "../support/clients.ts";

const client = dynamoClient();
const table = uniqueName("manifests");
const store = new ManifestStore(DynamoDBDocumentClient.from(client), table);
let dropTable: () => Promise<void>;

beforeAll(async () => {
  dropTable = await createJobsTable(client, table);
});
afterAll(async () => {
  await dropTable();
  client.destroy();
});

const segment = (id: string, chunks = 3): SegmentRef => ({
  id,
  key: `index/acme/docs/segments/${id}.seg`,
  chunks,
  bytes: 100,
  createdAt: new Date().toISOString(),
});

const MINI = { index: "1", model: "all-minilm-l6-v2-q" };

describe("ManifestStore on DynamoDB Local", () => {
  it("reveals a batch's revisions and tombstones what they replace in one write", async () => {
    await store.addSegment("acme", "reveal", segment("r1"), MINI, ["d1@j1", "d2@j2", "d3@j3"]);
    const before = await store.get("acme", "reveal");
    expect([...(before.pending ?? [])].sort()).toEqual(["d1@j1", "d2@j2", "d3@j3"]);
    await store.revealRevisions("acme", "reveal", ["d1@j1", "d2@j2"], ["d1@j0"]);
    const after = await store.get("acme", "reveal");
    expect(after.pending ?? []).toEqual(["d3@j3"]);
    expect(after.tombstones).toEqual(["d1@j0"]);
    expect(after.version).toBe(before.version + 1);
    // A replay changes nothing but the version; nothing to reveal writes nothing.
    await store.revealRevisions("acme", "reveal", ["d1@j1", "d2@j2"], ["d1@j0"]);
    await store.revealRevisions("acme", "reveal", []);
    const again = await store.get("acme", "reveal");
    expect({ pending: again.pending, tombstones: again.tombstones }).toEqual({
      pending: ["d3@j3"],
      tombstones: ["d1@j0"],
    });
    expect(again.version).toBe(before.version + 2);
  });

  it("lists a segment once however often it is added", async () => {
    expect(await store.addSegment("acme", "docs", segment("s1"), MINI)).toBe(true);
    expect(await store.addSegment("acme", "docs", segment("s1"), MINI)).toBe(false);
    expect(await store.addSegment("acme", "docs", segment("s2"), MINI)).toBe(true);
    const manifest = await store.get("acme", "docs");
    expect(manifest.segments.map((ref) => ref.id)).toEqual(["s1", "s2"]);
    expect(manifest.version).toBe(2);
  });

  it("swaps merged segments in while they are all still listed, keeps segments added meanwhile, drops purged tombstones", async () => {
    await store.addTombstone("acme", "docs", "doc-a@job-1");
    const manifest = await store.get("acme", "docs");
    // Ingestion goes on while compaction merges s1 and s2.
    await store.addSegment("acme", "docs", segment("s3"), MINI);
    await store.replaceSegments(manifest, ["s1", "s2"], segment("m1", 6), ["doc-a@job-1"]);
    const after = await store.get("acme", "docs");
    expect(after.segments.map((ref) => ref.id).sort()).toEqual(["m1", "s3"]);
    expect(after.tombstones).toEqual([]);
    // The merged-away objects are retired, to be deleted later.
    expect(Object.keys(after.retired ?? {}).sort()).toEqual([segment("s1").key, segment("s2").key]);
    // Another compaction that also took s1 loses.
    await expect(store.replaceSegments(manifest, ["s1", "s3"], segment("m2", 6), [])).rejects.toBeInstanceOf(
      ManifestConflict,
    );
    expect((await store.get("acme", "docs")).segments.map((ref) => ref.id).sort()).toEqual(["m1", "s3"]);
    await store.forgetRetired("acme", "docs", [segment("s1").key]);
    expect(Object.keys((await store.get("acme", "docs")).retired ?? {})).toEqual([segment("s2").key]);
  });

  it("lets one compaction at a time hold a collection's lease", async () => {
    expect(await store.tryLease("acme", "leased", "a", 60)).toBe(true);
    expect(await store.tryLease("acme", "leased", "b", 60)).toBe(false);
    // The holder renews; another holder's release changes nothing.
    expect(await store.tryLease("acme", "leased", "a", 60)).toBe(true);
    await store.releaseLease("acme", "leased", "b");
    expect(await store.tryLease("acme", "leased", "b", 60)).toBe(false);
    await store.releaseLease("acme", "leased", "a");
    expect(await store.tryLease("acme", "leased", "b", 60)).toBe(true);
    // An expired lease can be taken over.
    expect(await store.tryLease("acme", "expiring", "a", -1)).toBe(true);
    expect(await store.tryLease("acme", "expiring", "b", 60)).toBe(true);
  });

  it("promotes the newest upload of a document and names the revision it replaces", async () => {
    const early = "2026-01-01T00:00:00.000Z";
    const late = "2026-01-02T00:00:00.000Z";
    expect(
      await store.promoteRevision("acme", "doc-b", { id: "job-2", collection: "docs", createdAt: late }),
    ).toBeUndefined();
    // An older upload finishing later is superseded at once.
    expect(await store.promoteRevision("acme", "doc-b", { id: "job-1", collection: "docs", createdAt: early })).toEqual(
      {
        id: "job-1",
        collection: "docs",
      },
    );
    expect(
      await store.promoteRevision("acme", "doc-b", {
        id: "job-3",
        collection: "docs",
        createdAt: "2026-01-03T00:00:00.000Z",
      }),
    ).toEqual({ id: "job-2", collection: "docs" });
    expect(await store.liveRevision("acme", "doc-b")).toEqual({ id: "job-3", collection: "docs" });
    await store.forgetDocument("acme", "doc-b");
    expect(await store.liveRevision("acme", "doc-b")).toBeUndefined();
  });

  it("records each index's model, refuses vectors of another model, and switches the active index in one write", async () => {
    await store.addSegment("acme", "mig", segment("a1"), MINI);
    await expect(
      store.addSegment("acme", "mig", segment("a2"), { index: "1", model: "bge-small-en-v1.5-q" }),
    ).rejects.toBeInstanceOf(ModelMismatch);
    await store.addTombstone("acme", "mig", "doc-x@job-1");
    const migration: Migration = {
      id: "migration-mig-2",
      jobId: "migration-mig-2",
      from: "1",
      to: "2",
      fromModel: MINI.model,
      model: "bge-small-en-v1.5-q",
      state: "RUNNING",
      startedAt: new Date().toISOString(),
    };
    await store.startMigration("acme", "mig", migration, ["doc-x@job-1"]);
    // A second migration while one is recorded is refused.
    await expect(
      store.startMigration("acme", "mig", { ...migration, id: "other", to: "3" }, []),
    ).rejects.toBeInstanceOf(ManifestConflict);
    const bge = { index: "2", model: "bge-small-en-v1.5-q" };
    expect(await store.addSegment("acme", "mig", segment("b1"), bge)).toBe(true);
    await expect(
      store.addSegment("acme", "mig", segment("b2"), MINI.model ? { ...bge, model: MINI.model } : bge),
    ).rejects.toBeInstanceOf(ModelMismatch);
    // Tombstones reach every index.
    await store.addTombstone("acme", "mig", "doc-y@job-2");
    let state = await store.collection("acme", "mig");
    expect(state.active).toBe("1");
    expect([...state.indexes.keys()].sort()).toEqual(["1", "2"]);
    expect(state.indexes.get("2")).toMatchObject({ model: bge.model, tombstones: ["doc-x@job-1", "doc-y@job-2"] });
    expect((await store.get("acme", "mig")).index).toBe("1");

    await store.switchActive("acme", "mig", {
      migrationId: migration.id,
      from: "1",
      to: "2",
      state: "CUT_OVER",
      at: "t",
    });
    expect(await store.get("acme", "mig")).toMatchObject({ index: "2", model: bge.model });
    // The switch is conditional on where it comes from: a stale one changes nothing.
    await expect(
      store.switchActive("acme", "mig", { migrationId: migration.id, from: "1", to: "2", state: "CUT_OVER", at: "t" }),
    ).rejects.toBeInstanceOf(ManifestConflict);

    // The active index cannot be dropped; the old one can, and no late write brings it back.
    await expect(store.dropIndex("acme", "mig", "2")).rejects.toBeInstanceOf(ManifestConflict);
    const dropped = await store.dropIndex("acme", "mig", "1");
    expect(dropped.segments.map((ref) => ref.id)).toEqual(["a1"]);
    await expect(store.addSegment("acme", "mig", segment("a3"), MINI)).rejects.toBeInstanceOf(IndexGone);
    state = await store.collection("acme", "mig");
    expect([...state.indexes.keys()]).toEqual(["2"]);
    expect(state.dropped).toEqual(["1"]);
    expect(state.migration).toBeUndefined();
  });

  it("reads an index written before models were recorded as the legacy model's", async () => {
    await store.addTombstone("acme", "fresh", "doc@job");
    // A new collection's first index takes its first segment's model.
    expect(await store.addSegment("acme", "fresh", segment("f1"), { index: "1", model: "e5-small-v2-q" })).toBe(true);
    expect((await store.get("acme", "fresh")).model).toBe("e5-small-v2-q");
  });
});
