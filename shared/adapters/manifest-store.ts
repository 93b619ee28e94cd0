import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  type CollectionState,
  type EvaluationReport,
  FIRST_INDEX,
  IndexGone,
  type IndexManifest,
  LEGACY_MODEL_ID,
  type Manifest,
  ManifestConflict,
  type Migration,
  type MigrationState,
  ModelMismatch,
  type SegmentRef,
} from "../domain/manifest.ts";

/**
 * Collection manifests in the jobs table, every change guarded by a condition, plus each
 * document's live revision (`DOC#<tenant>#<id>` / `DOC`).
 *
 * A collection's items share the partition `COLLECTION#<tenant>#<collection>`, so one consistent
 * Query reads them all: `MANIFEST` is the manifest of its first index (where collections always
 * had it), `MANIFEST#<id>` those of later indexes, and `COLLECTION` (absent until a collection's
 * first migration) names the active index and the migration. Each manifest records its `model`;
 * a segment is listed only if its model is the index's, and a dropped index keeps a `dropped`
 * marker so a late write can never bring it back.
 */
export class ManifestStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private partition = (tenant: string, collection: string) => `COLLECTION#${tenant}#${collection}`;
  private key = (tenant: string, collection: string, index: string = FIRST_INDEX) => ({
    pk: this.partition(tenant, collection),
    sk: index === FIRST_INDEX ? "MANIFEST" : `MANIFEST#${index}`,
  });
  private collectionKey = (tenant: string, collection: string) => ({
    pk: this.partition(tenant, collection),
    sk: "COLLECTION",
  });
  private documentKey = (tenant: string, documentId: string) => ({ pk: `DOC#${tenant}#${documentId}`, sk: "DOC" });

  /** The manifest of index `index`, or of the collection's active index (one consistent read either way). */
  async get(tenant: string, collection: string, index?: string): Promise<IndexManifest> {
    if (index === undefined) return activeManifest(await this.collection(tenant, collection));
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: this.key(tenant, collection, index), ConsistentRead: true }),
    );
    return toManifest(tenant, collection, index, Item?.dropped ? undefined : Item);
  }

  /** Every item of the collection in one consistent Query: its indexes, the active one, its migration. */
  async collection(tenant: string, collection: string): Promise<CollectionState & { dropped: string[] }> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": this.partition(tenant, collection) },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    const indexes = new Map<string, IndexManifest>();
    const dropped: string[] = [];
    let pointer: Record<string, unknown> | undefined;
    for (const item of items) {
      const sk = String(item.sk);
      if (sk === "COLLECTION") pointer = item;
      else if (sk === "MANIFEST" || sk.startsWith("MANIFEST#")) {
        const index = sk === "MANIFEST" ? FIRST_INDEX : sk.slice("MANIFEST#".length);
        if (item.dropped) dropped.push(index);
        else indexes.set(index, toManifest(tenant, collection, index, item));
      }
    }
    return {
      tenant,
      collection,
      active: String(pointer?.active ?? FIRST_INDEX),
      indexes,
      dropped,
      ...(pointer?.migration ? { migration: pointer.migration as Migration } : {}),
    };
  }

  /**
   * Lists a segment in an index once (a segment id already listed, a redelivered batch, changes
   * nothing) and only if the index holds vectors of `target.model`: an index of another model
   * throws ModelMismatch, a dropped index IndexGone. The first index of a new collection is
   * created by its first segment, with that segment's model. The revisions whose chunks it holds
   * are listed as pending in the same write (hidden from search until `revealRevision`).
   */
  async addSegment(
    tenant: string,
    collection: string,
    segment: SegmentRef,
    target: { index: string; model: string },
    pendingRevisions: string[] = [],
  ): Promise<boolean> {
    const key = this.key(tenant, collection, target.index);
    if (target.index === FIRST_INDEX) await this.ensure(tenant, collection);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key,
            UpdateExpression: `SET #segments.#id = :segment ADD #version :one${pendingRevisions.length > 0 ? ", pending :pending" : ""}`,
            ConditionExpression:
              "attribute_exists(pk) AND attribute_not_exists(dropped) AND #model = :model AND attribute_not_exists(#segments.#id)",
            ExpressionAttributeNames: {
              "#segments": "segments",
              "#version": "version",
              "#id": segment.id,
              "#model": "model",
            },
            ExpressionAttributeValues: {
              ":segment": segment,
              ":one": 1,
              ":model": target.model,
              ...(pendingRevisions.length > 0 ? { ":pending": new Set(pendingRevisions) } : {}),
            },
          }),
        );
        return true;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
      // Why the condition failed decides: listed before, another model, dropped, or no model yet.
      const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
      if (!Item || Item.dropped) throw new IndexGone(`index ${target.index} of collection ${collection} was dropped`);
      if ((Item.segments as Record<string, unknown> | undefined)?.[segment.id]) return false;
      if (Item.model !== undefined && Item.model !== target.model) {
        throw new ModelMismatch(
          `index ${target.index} of collection ${collection} holds ${String(Item.model)} vectors, not ${target.model}`,
        );
      }
      // No model recorded: an index written before models were (its vectors are the legacy
      // model's), or a new one nothing was written to yet (it takes this segment's model).
      const empty = Object.keys((Item.segments ?? {}) as object).length === 0;
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: "SET #model = if_not_exists(#model, :model)",
          ExpressionAttributeNames: { "#model": "model" },
          ExpressionAttributeValues: { ":model": empty ? target.model : LEGACY_MODEL_ID },
        }),
      );
    }
    throw new ManifestConflict(`could not list segment ${segment.id} in index ${target.index} of ${collection}`);
  }

  /**
   * Hides a revision from search from now on, in every live index of the collection (each index
   * holds the same revisions; compaction later drops their chunks).
   */
  async addTombstone(tenant: string, collection: string, revision: string): Promise<void> {
    const { indexes } = await this.collection(tenant, collection);
    const targets = indexes.size > 0 ? [...indexes.keys()] : [FIRST_INDEX];
    if (indexes.size === 0) await this.ensure(tenant, collection);
    for (const index of targets) await this.addTombstones(tenant, collection, index, [revision]);
  }

  /** Adds tombstones to one index (a no-op on a dropped one). */
  async addTombstones(tenant: string, collection: string, index: string, revisions: string[]): Promise<void> {
    if (revisions.length === 0) return;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(tenant, collection, index),
          UpdateExpression: "ADD tombstones :revisions, #version :one",
          ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(dropped)",
          ExpressionAttributeNames: { "#version": "version" },
          ExpressionAttributeValues: { ":revisions": new Set(revisions), ":one": 1 },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Makes completed revisions searchable (no longer pending) and, in the same write per index,
   * tombstones the revisions they replace, so search never shows both or neither. Every live index
   * of the collection is updated (an upload lands in each of them); a batch of revisions costs one
   * write per index, not one per revision.
   */
  async revealRevisions(
    tenant: string,
    collection: string,
    revisions: readonly string[],
    replaced: readonly string[] = [],
  ): Promise<void> {
    if (revisions.length === 0 && replaced.length === 0) return;
    const { indexes } = await this.collection(tenant, collection);
    const targets = indexes.size > 0 ? [...indexes.keys()] : [FIRST_INDEX];
    if (indexes.size === 0) await this.ensure(tenant, collection);
    const changes = [
      ...(revisions.length > 0 ? ["DELETE pending :revisions"] : []),
      `ADD #version :one${replaced.length > 0 ? ", tombstones :replaced" : ""}`,
    ];
    for (const index of targets) {
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: this.key(tenant, collection, index),
            UpdateExpression: changes.join(" "),
            ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(dropped)",
            ExpressionAttributeNames: { "#version": "version" },
            ExpressionAttributeValues: {
              ...(revisions.length > 0 ? { ":revisions": new Set(revisions) } : {}),
              ":one": 1,
              ...(replaced.length > 0 ? { ":replaced": new Set(replaced) } : {}),
            },
          }),
        );
      } catch (error) {
        // An index dropped meanwhile has nothing to show.
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
  }

  /**
   * Compaction's swap: the merged segment replaces its sources — only if every source is still listed
   * (another compaction did not take them) — and the tombstones no segment holds any more are dropped.
   * The sources' objects are recorded as retired (deleted later, once no search can still be reading them).
   * Segments added meanwhile are untouched.
   */
  async replaceSegments(
    manifest: Manifest & { index?: string },
    removed: string[],
    added: SegmentRef,
    purgedTombstones: string[],
  ): Promise<void> {
    const names: Record<string, string> = { "#segments": "segments", "#version": "version", "#added": added.id };
    const values: Record<string, unknown> = { ":added": added, ":one": 1 };
    const conditions = ["attribute_not_exists(#segments.#added)"];
    const removals: string[] = [];
    const retirements: string[] = [];
    const retiredAt = new Date().toISOString();
    const keys = new Map(manifest.segments.map((ref) => [ref.id, ref.key]));
    removed.forEach((id, i) => {
      names[`#r${i}`] = id;
      removals.push(`#segments.#r${i}`);
      conditions.push(`attribute_exists(#segments.#r${i})`);
      const key = keys.get(id);
      if (key !== undefined && id !== added.id) {
        names[`#k${i}`] = key;
        retirements.push(`#retired.#k${i} = :retiredAt`);
      }
    });
    if (retirements.length > 0) {
      names["#retired"] = "retired";
      values[":retiredAt"] = retiredAt;
    }
    // The retired map must exist before entries can be set in it.
    if (retirements.length > 0 && manifest.retired === undefined) await this.ensureRetired(manifest);
    let update = `SET ${["#segments.#added = :added", ...retirements].join(", ")} ADD #version :one REMOVE ${removals.join(", ")}`;
    if (purgedTombstones.length > 0) {
      values[":purged"] = new Set(purgedTombstones);
      update += " DELETE tombstones :purged";
    }
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(manifest.tenant, manifest.collection, manifest.index),
          UpdateExpression: update,
          ConditionExpression: conditions.join(" AND "),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        throw new ManifestConflict("the segments to replace changed meanwhile");
      throw error;
    }
  }

  private async ensureRetired(manifest: Manifest & { index?: string }): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(manifest.tenant, manifest.collection, manifest.index),
        UpdateExpression: "SET retired = if_not_exists(retired, :empty)",
        ExpressionAttributeValues: { ":empty": {} },
      }),
    );
  }

  /** Forgets retired segment objects (after they were deleted). */
  async forgetRetired(
    tenant: string,
    collection: string,
    keys: readonly string[],
    index: string = FIRST_INDEX,
  ): Promise<void> {
    if (keys.length === 0) return;
    const names: Record<string, string> = { "#retired": "retired" };
    const removals = keys.map((key, i) => {
      names[`#k${i}`] = key;
      return `#retired.#k${i}`;
    });
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(tenant, collection, index),
        UpdateExpression: `REMOVE ${removals.join(", ")}`,
        ExpressionAttributeNames: names,
      }),
    );
  }

  /**
   * Takes (or renews) the collection's compaction lease for `seconds`, unless another holder has it:
   * one compaction at a time per collection, with no process to manage.
   */
  async tryLease(tenant: string, collection: string, holder: string, seconds: number): Promise<boolean> {
    const now = Date.now();
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `COLLECTION#${tenant}#${collection}`, sk: "COMPACTION", holder, until: now + seconds * 1000 },
          ConditionExpression: "attribute_not_exists(pk) OR #until < :now OR holder = :holder",
          ExpressionAttributeNames: { "#until": "until" },
          ExpressionAttributeValues: { ":now": now, ":holder": holder },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async releaseLease(tenant: string, collection: string, holder: string): Promise<void> {
    try {
      await this.db.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: `COLLECTION#${tenant}#${collection}`, sk: "COMPACTION" },
          ConditionExpression: "holder = :holder",
          ExpressionAttributeValues: { ":holder": holder },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Starts a migration: records it on the collection (only when no other is recorded: one
   * migration, and at most two indexes, at a time) and creates its new, empty index with its
   * model and the tombstones the active index has.
   */
  async startMigration(tenant: string, collection: string, migration: Migration, tombstones: string[]): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.collectionKey(tenant, collection),
          UpdateExpression: "SET #active = if_not_exists(#active, :first), #migration = :migration",
          ConditionExpression:
            "attribute_not_exists(#migration) AND (attribute_not_exists(#active) OR #active = :from)",
          ExpressionAttributeNames: { "#active": "active", "#migration": "migration" },
          ExpressionAttributeValues: { ":first": FIRST_INDEX, ":migration": migration, ":from": migration.from },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        throw new ManifestConflict(`collection ${collection} changed meanwhile (another migration started)`);
      throw error;
    }
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...this.key(tenant, collection, migration.to),
          tenant,
          collection,
          index: migration.to,
          model: migration.model,
          version: 0,
          segments: {},
          ...(tombstones.length > 0 ? { tombstones: new Set(tombstones) } : {}),
        },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
  }

  /**
   * The one switch of a cut-over or a roll-back: the active index becomes `to`, only if it is
   * still `from`, the migration is still `migrationId` and `to` was not dropped.
   */
  async switchActive(
    tenant: string,
    collection: string,
    change: { migrationId: string; from: string; to: string; state: MigrationState; at: string },
  ): Promise<void> {
    const stamp = change.state === "CUT_OVER" ? "cutOverAt" : "rolledBackAt";
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: this.collectionKey(tenant, collection),
                UpdateExpression: "SET #active = :to, #migration.#state = :state, #migration.#stamp = :at",
                ConditionExpression: "#active = :from AND #migration.#id = :id",
                ExpressionAttributeNames: {
                  "#active": "active",
                  "#migration": "migration",
                  "#state": "state",
                  "#stamp": stamp,
                  "#id": "id",
                },
                ExpressionAttributeValues: {
                  ":to": change.to,
                  ":from": change.from,
                  ":state": change.state,
                  ":at": change.at,
                  ":id": change.migrationId,
                },
              },
            },
            {
              ConditionCheck: {
                TableName: this.table,
                Key: this.key(tenant, collection, change.to),
                ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(dropped)",
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (error instanceof TransactionCanceledException)
        throw new ManifestConflict(`collection ${collection} changed meanwhile`);
      throw error;
    }
  }

  /** Keeps the evaluation gate's report on the migration. */
  async saveReport(tenant: string, collection: string, migrationId: string, report: EvaluationReport): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.collectionKey(tenant, collection),
          UpdateExpression: "SET #migration.#report = :report",
          ConditionExpression: "#migration.#id = :id",
          ExpressionAttributeNames: { "#migration": "migration", "#report": "report", "#id": "id" },
          ExpressionAttributeValues: { ":report": report, ":id": migrationId },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Drops an index that is not the active one: its manifest keeps only a `dropped` marker (so no
   * late write lists a segment in it again) and the collection forgets the migration that made
   * or kept it. Returns the dropped manifest (its segments, to delete).
   */
  async dropIndex(tenant: string, collection: string, index: string): Promise<IndexManifest> {
    const manifest = await this.get(tenant, collection, index);
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: this.collectionKey(tenant, collection),
                UpdateExpression: "SET #active = if_not_exists(#active, :first) REMOVE #migration",
                // Without a pointer the first index is the active one.
                ConditionExpression:
                  index === FIRST_INDEX ? "#active <> :index" : "attribute_not_exists(#active) OR #active <> :index",
                ExpressionAttributeNames: { "#active": "active", "#migration": "migration" },
                ExpressionAttributeValues: { ":first": FIRST_INDEX, ":index": index },
              },
            },
            {
              Update: {
                TableName: this.table,
                Key: this.key(tenant, collection, index),
                UpdateExpression: "SET #dropped = :now REMOVE #segments, #tombstones",
                ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(#dropped)",
                ExpressionAttributeNames: {
                  "#dropped": "dropped",
                  "#segments": "segments",
                  "#tombstones": "tombstones",
                },
                ExpressionAttributeValues: { ":now": new Date().toISOString() },
              },
            },
          ],
        }),
      );
    } catch (error) {
      if (error instanceof TransactionCanceledException) {
        throw new ManifestConflict(`index ${index} of ${collection} is the active one, or is not there`);
      }
      throw error;
    }
    return manifest;
  }

  /**
   * Makes `revision` the live one of its document unless a newer upload already is. Returns the
   * revision that stops being live (to tombstone), if any.
   */
  async promoteRevision(
    tenant: string,
    documentId: string,
    revision: { id: string; collection: string; createdAt: string },
  ): Promise<{ id: string; collection: string } | undefined> {
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.documentKey(tenant, documentId),
          UpdateExpression: "SET revision = :id, #collection = :collection, revisionCreatedAt = :created",
          // A replay of the same promotion changes nothing and replaces nothing.
          ConditionExpression: "attribute_not_exists(revision) OR revisionCreatedAt < :created OR revision = :id",
          ExpressionAttributeNames: { "#collection": "collection" },
          ExpressionAttributeValues: {
            ":id": revision.id,
            ":collection": revision.collection,
            ":created": revision.createdAt,
          },
          ReturnValues: "UPDATED_OLD",
        }),
      );
      const previous = Attributes?.revision as string | undefined;
      return previous && previous !== revision.id
        ? { id: previous, collection: String(Attributes?.collection ?? revision.collection) }
        : undefined;
    } catch (error) {
      // A newer upload of this document is already live: this older one is superseded at once.
      if (error instanceof ConditionalCheckFailedException) return { id: revision.id, collection: revision.collection };
      throw error;
    }
  }

  /** The document's live revision, for deletion. */
  async liveRevision(tenant: string, documentId: string): Promise<{ id: string; collection: string } | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: this.documentKey(tenant, documentId), ConsistentRead: true }),
    );
    return Item?.revision ? { id: String(Item.revision), collection: String(Item.collection) } : undefined;
  }

  /** Forgets the document (after its live revision was tombstoned). */
  async forgetDocument(tenant: string, documentId: string): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.documentKey(tenant, documentId),
        UpdateExpression: "REMOVE revision, revisionCreatedAt SET deletedAt = :now",
        ExpressionAttributeValues: { ":now": new Date().toISOString() },
      }),
    );
  }

  /** Creates the first index's manifest item the first time a collection is written (without a model yet). */
  private async ensure(tenant: string, collection: string): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...this.key(tenant, collection), tenant, collection, version: 0, segments: {} },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
}

/** An index's manifest from its item (an empty one when there is none). */
function toManifest(
  tenant: string,
  collection: string,
  index: string,
  item: Record<string, unknown> | undefined,
): IndexManifest {
  const segments = Object.values((item?.segments ?? {}) as Record<string, SegmentRef>).sort((a, b) =>
    a.createdAt === b.createdAt ? a.id.localeCompare(b.id) : a.createdAt.localeCompare(b.createdAt),
  );
  // An item written before models were recorded holds the legacy model's vectors.
  const model = item?.model !== undefined ? String(item.model) : segments.length > 0 ? LEGACY_MODEL_ID : undefined;
  return {
    tenant,
    collection,
    index,
    ...(model ? { model } : {}),
    version: Number(item?.version ?? 0),
    segments,
    tombstones: [...((item?.tombstones as Set<string> | undefined) ?? [])].sort(),
    ...(item?.retired ? { retired: { ...(item.retired as Record<string, string>) } } : {}),
    pending: [...((item?.pending as Set<string> | undefined) ?? [])].sort(),
  };
}

/** The active index's manifest (an empty first index for a collection nothing was written to). */
export function activeManifest(state: CollectionState): IndexManifest {
  return (
    state.indexes.get(state.active) ?? {
      tenant: state.tenant,
      collection: state.collection,
      index: state.active,
      version: 0,
      segments: [],
      tombstones: [],
    }
  );
}
