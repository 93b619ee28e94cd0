/**
 * A collection moves to another embedding model while it is searched: the whole platform from the
 * synthesized template (real Kafka, S3, DynamoDB Local, both models), searches running throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, type DataDistillerClient, type MigrationView } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { makeUtf8Text } from "../fixtures/make-fixtures.ts";
import { startTestPlatform, tenantClient } from "../support/platform.ts";

const FROM = "all-minilm-l6-v2-q";
const TO = "bge-small-en-v1.5-q";
const collection = "library";

const documents: Record<string, string> = {
  glaciers:
    "Glaciers carve deep U-shaped valleys as they slowly move downhill, grinding the bedrock with the rocks frozen into their base.",
  volcano:
    "A volcano erupts when magma rises through the crust; lava flows, ash clouds and volcanic gases follow the eruption.",
  bread:
    "Sourdough bread rises because wild yeast and lactic acid bacteria in the starter ferment the flour and release carbon dioxide.",
  chess:
    "In chess the knight moves in an L shape and is the only piece that can jump over the other pieces on the board.",
  bees: "Honey bees communicate the direction and distance of flowers to their hive mates with a waggle dance.",
  tides: "Ocean tides are caused mainly by the gravitational pull of the moon on the rotating earth.",
};

let platform: Platform;
let api: DataDistillerClient;
const logs: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line));
  ({ client: api } = await tenantClient(platform, "migration"));
}, 600_000);

afterAll(async () => {
  await platform?.stop();
});

async function upload(documentId: string, text: string) {
  const ticket = await api.ingest(
    { filename: `${documentId}.txt`, contentType: "text/plain", bytes: makeUtf8Text(text) },
    { collection, documentId },
  );
  return ticket.jobId;
}

async function waitForMigration(migrationId: string, until: (view: MigrationView) => boolean): Promise<MigrationView> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const view = await api.migration(collection, migrationId);
    if (until(view)) return view;
    if (view.state === "FAILED") throw new Error(`migration failed: ${view.job?.error}`);
    if (Date.now() > deadline) throw new Error(`migration still ${view.state}: ${JSON.stringify(view.job?.counts)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe("moving a collection to another embedding model", () => {
  it("re-embeds in the background while searches keep answering, lands new uploads in both, cuts over and rolls back", async () => {
    const jobs = await Promise.all(Object.entries(documents).map(([id, text]) => upload(id, text)));
    for (const jobId of jobs) expect((await api.waitForJob(jobId)).state).toBe("COMPLETED");
    const before = await api.collection(collection);
    expect(before).toMatchObject({ activeIndex: "1", model: FROM });

    // Searches run for the whole migration; none may fail, each says which index answered.
    const answered: { model?: string; top?: string }[] = [];
    const failures: unknown[] = [];
    let searching = true;
    const searches = (async () => {
      while (searching) {
        try {
          const response = await api.search({ query: "how do glaciers shape valleys", collection, k: 3 });
          answered.push({ model: response.model, top: response.results[0]?.documentId });
        } catch (error) {
          failures.push(error);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    // Unknown and same models are refused with a reason.
    await expect(api.startMigration(collection, { model: "no-such-model" })).rejects.toMatchObject({
      status: 400,
      code: "UNKNOWN_MODEL",
    });
    await expect(api.startMigration(collection, { model: FROM })).rejects.toMatchObject({
      status: 409,
      code: "SAME_MODEL",
    });

    let migration = await api.startMigration(collection, {
      model: TO,
      evaluation: {
        queries: [
          { query: "how do glaciers shape valleys", relevant: ["glaciers"] },
          { query: "why does sourdough rise", relevant: ["bread"] },
          { query: "what causes the tides", relevant: { tides: 2 } },
        ],
      },
    });
    expect(migration).toMatchObject({ from: { index: "1", model: FROM }, to: { index: "2", model: TO } });
    expect(migration.job?.counts.chunksTotal).toBe(Object.keys(documents).length);
    // Only one migration at a time.
    await expect(api.startMigration(collection, { model: TO })).rejects.toMatchObject({
      status: 409,
      code: "MIGRATION_EXISTS",
    });

    // A document uploaded during the migration lands in both indexes: its job counts its chunk twice.
    const lateJob = await upload(
      "aurora",
      "Auroras glow when charged particles from the sun hit the upper atmosphere.",
    );
    const late = await api.waitForJob(lateJob);
    expect(late.state).toBe("COMPLETED");
    expect(late.counts.chunksTotal).toBe(2);

    migration = await waitForMigration(
      migration.migrationId,
      (view) => view.state === "READY" && "better" in view.evaluation,
    );
    expect(migration.job?.state).toBe("COMPLETED");
    // The re-embedding is a job like an upload's: GET /jobs/{id} answers it by the migration's id.
    expect(await api.waitForJob(migration.migrationId)).toMatchObject({ state: "COMPLETED", documentId: "index-2" });
    expect(migration.evaluation).toMatchObject({ queries: 3, old: { model: FROM }, new: { model: TO } });
    const { indexes } = await api.collection(collection);
    expect(indexes.find((index) => index.index === "2")).toMatchObject({ model: TO, active: false });
    // Still the old index until the cut-over.
    expect((await api.search({ query: "aurora", collection })).model).toBe(FROM);

    const cut = await api.cutOver(collection, migration.migrationId, { force: true });
    expect(cut.state).toBe("CUT_OVER");
    const after = await api.search({ query: "charged particles from the sun", collection, mode: "dense", k: 3 });
    expect(after).toMatchObject({ index: "2", model: TO });
    expect(after.results[0]?.documentId).toBe("aurora");
    const glaciers = await api.search({ query: "how do glaciers shape valleys", collection, mode: "dense", k: 1 });
    expect(glaciers.results[0]?.documentId).toBe("glaciers");

    // Roll back: the old index answers again, and it kept what was uploaded meanwhile.
    await api.rollBack(collection, migration.migrationId);
    const back = await api.search({ query: "charged particles from the sun", collection, mode: "dense", k: 3 });
    expect(back).toMatchObject({ index: "1", model: FROM });
    expect(back.results[0]?.documentId).toBe("aurora");

    // Forward again, then drop the old index: it stops receiving uploads, the new one serves.
    await api.cutOver(collection, migration.migrationId, { force: true });
    await expect(api.dropIndex(collection, "2")).rejects.toMatchObject({ status: 409, code: "INDEX_ACTIVE" });
    await api.dropIndex(collection, "1");
    const finalJob = await upload(
      "bees",
      "Bumble bees and honey bees pollinate flowers; a waggle dance points to them.",
    );
    const final = await api.waitForJob(finalJob);
    expect(final.counts.chunksTotal).toBe(1);
    const view = await api.collection(collection);
    expect(view).toMatchObject({ activeIndex: "2", model: TO });
    expect(view.indexes.map((index) => index.index)).toEqual(["2"]);
    expect(view.migration).toBeUndefined();

    searching = false;
    await searches;
    expect(failures).toEqual([]);
    // Searches answered on both sides of the cut-over (how many depends on the machine's speed).
    expect(new Set(answered.map((answer) => answer.model))).toEqual(new Set([FROM, TO]));
    expect(answered.every((answer) => answer.top === "glaciers")).toBe(true);
  }, 600_000);

  it("answers 404 for a collection nothing was indexed in", async () => {
    await expect(api.collection("nothing-here")).rejects.toBeInstanceOf(ApiError);
    await expect(api.collection("nothing-here")).rejects.toMatchObject({ status: 404, code: "COLLECTION_NOT_FOUND" });
    await expect(api.migration(collection, "migration-nope-9-0")).rejects.toMatchObject({
      status: 404,
      code: "MIGRATION_NOT_FOUND",
    });
    await expect(api.dropIndex(collection, "7")).rejects.toMatchObject({ status: 404, code: "INDEX_NOT_FOUND" });
  });
});
