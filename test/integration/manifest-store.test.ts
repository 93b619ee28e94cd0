import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobsTable } from "../../localstack/platform/jobs-table.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ManifestConflict, type SegmentRef } from "../../shared/domain/manifest.ts";
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

describe("ManifestStore on DynamoDB Local", () => {
  it("lists a segment once however often it is added", async () => {
    expect(await store.addSegment("acme", "docs", segment("s1"))).toBe(true);
    expect(await store.addSegment("acme", "docs", segment("s1"))).toBe(false);
    expect(await store.addSegment("acme", "docs", segment("s2"))).toBe(true);
    const manifest = await store.get("acme", "docs");
    expect(manifest.segments.map((ref) => ref.id)).toEqual(["s1", "s2"]);
    expect(manifest.version).toBe(2);
  });

  it("swaps merged segments in while they are all still listed, keeps segments added meanwhile, drops purged tombstones", async () => {
    await store.addTombstone("acme", "docs", "doc-a@job-1");
    const manifest = await store.get("acme", "docs");
    // Ingestion goes on while compaction merges s1 and s2.
    await store.addSegment("acme", "docs", segment("s3"));
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
});
