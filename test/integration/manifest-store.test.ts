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

  it("swaps merged segments in only if nothing changed meanwhile, dropping purged tombstones", async () => {
    await store.addTombstone("acme", "docs", "doc-a@job-1");
    const manifest = await store.get("acme", "docs");
    await store.addSegment("acme", "docs", segment("s3"));
    await expect(
      store.replaceSegments(manifest, ["s1", "s2"], segment("m1", 6), ["doc-a@job-1"]),
    ).rejects.toBeInstanceOf(ManifestConflict);
    const fresh = await store.get("acme", "docs");
    await store.replaceSegments(fresh, ["s1", "s2", "s3"], segment("m1", 9), ["doc-a@job-1"]);
    const after = await store.get("acme", "docs");
    expect(after.segments.map((ref) => ref.id)).toEqual(["m1"]);
    expect(after.tombstones).toEqual([]);
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
