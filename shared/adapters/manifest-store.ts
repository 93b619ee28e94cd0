import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { type Manifest, ManifestConflict, type SegmentRef } from "../domain/manifest.ts";

/**
 * Collection manifests in the jobs table (`COLLECTION#<tenant>#<collection>` / `MANIFEST`), every
 * change guarded by a condition, plus each document's live revision (`DOC#<tenant>#<id>` / `DOC`).
 */
export class ManifestStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private key = (tenant: string, collection: string) => ({ pk: `COLLECTION#${tenant}#${collection}`, sk: "MANIFEST" });
  private documentKey = (tenant: string, documentId: string) => ({ pk: `DOC#${tenant}#${documentId}`, sk: "DOC" });

  async get(tenant: string, collection: string): Promise<Manifest> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: this.key(tenant, collection), ConsistentRead: true }),
    );
    const segments = Object.values((Item?.segments ?? {}) as Record<string, SegmentRef>).sort((a, b) =>
      a.createdAt === b.createdAt ? a.id.localeCompare(b.id) : a.createdAt.localeCompare(b.createdAt),
    );
    return {
      tenant,
      collection,
      version: Number(Item?.version ?? 0),
      segments,
      tombstones: [...((Item?.tombstones as Set<string> | undefined) ?? [])].sort(),
      pending: [...((Item?.pending as Set<string> | undefined) ?? [])].sort(),
    };
  }

  /**
   * Adds a segment once: a segment id already listed (a redelivered batch) changes nothing. The
   * revisions whose chunks it holds are listed as pending in the same write (hidden from search
   * until `revealRevision`).
   */
  async addSegment(
    tenant: string,
    collection: string,
    segment: SegmentRef,
    pendingRevisions: string[] = [],
  ): Promise<boolean> {
    await this.ensure(tenant, collection);
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(tenant, collection),
          UpdateExpression: `SET #segments.#id = :segment ADD #version :one${pendingRevisions.length > 0 ? ", pending :pending" : ""}`,
          ConditionExpression: "attribute_not_exists(#segments.#id)",
          ExpressionAttributeNames: { "#segments": "segments", "#version": "version", "#id": segment.id },
          ExpressionAttributeValues: {
            ":segment": segment,
            ":one": 1,
            ...(pendingRevisions.length > 0 ? { ":pending": new Set(pendingRevisions) } : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Makes a completed revision searchable (no longer pending) and, in the same write, tombstones
   * the revision it replaces in this collection, so search never shows both or neither.
   */
  async revealRevision(tenant: string, collection: string, revision: string, replaced?: string): Promise<void> {
    await this.ensure(tenant, collection);
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(tenant, collection),
        UpdateExpression: `DELETE pending :revision ADD #version :one${replaced ? ", tombstones :replaced" : ""}`,
        ExpressionAttributeNames: { "#version": "version" },
        ExpressionAttributeValues: {
          ":revision": new Set([revision]),
          ":one": 1,
          ...(replaced ? { ":replaced": new Set([replaced]) } : {}),
        },
      }),
    );
  }

  /** Hides a revision from search from now on (compaction later drops its chunks). */
  async addTombstone(tenant: string, collection: string, revision: string): Promise<void> {
    await this.ensure(tenant, collection);
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: this.key(tenant, collection),
        UpdateExpression: "ADD tombstones :revision, #version :one",
        ExpressionAttributeNames: { "#version": "version" },
        ExpressionAttributeValues: { ":revision": new Set([revision]), ":one": 1 },
      }),
    );
  }

  /**
   * Compaction's swap: the merged segment replaces its sources, and tombstones whose chunks are
   * gone are dropped, only if nothing changed the manifest since `expectedVersion`.
   */
  async replaceSegments(
    manifest: Manifest,
    removed: string[],
    added: SegmentRef,
    purgedTombstones: string[],
  ): Promise<void> {
    const names: Record<string, string> = { "#segments": "segments", "#version": "version", "#added": added.id };
    const removals = removed.map((id, i) => {
      names[`#r${i}`] = id;
      return `#segments.#r${i}`;
    });
    const values: Record<string, unknown> = {
      ":added": added,
      ":expected": manifest.version,
      ":next": manifest.version + 1,
    };
    let update = `SET #segments.#added = :added, #version = :next REMOVE ${removals.join(", ")}`;
    if (purgedTombstones.length > 0) {
      values[":purged"] = new Set(purgedTombstones);
      update += " DELETE tombstones :purged";
    }
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(manifest.tenant, manifest.collection),
          UpdateExpression: update,
          ConditionExpression: "#version = :expected",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        throw new ManifestConflict("the manifest changed meanwhile");
      throw error;
    }
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

  /** Creates the manifest item the first time a collection is written. */
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
