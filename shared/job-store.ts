import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { type Job, type JobState, statesBefore } from "./jobs.ts";

/**
 * Jobs in the single DynamoDB table: the job item (`JOB#<id>` / `JOB`) and, beside it, one marker
 * per processed batch (`JOB#<id>` / `DONE#<stage>#<batch>`). A marker and the counter it feeds are
 * written in one transaction with a condition on the marker, so a replayed batch adds nothing.
 */
export class JobStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly retentionDays = 30,
  ) {}

  private key = (jobId: string) => ({ pk: `JOB#${jobId}`, sk: "JOB" });

  async create(
    job: Omit<Job, "state" | "stages" | "chunksTotal" | "chunksEmbedded" | "chunksIndexed" | "createdAt" | "updatedAt">,
  ): Promise<Job> {
    const now = new Date().toISOString();
    const item: Job = {
      ...job,
      state: "PENDING_UPLOAD",
      stages: { PENDING_UPLOAD: now },
      chunksTotal: 0,
      chunksEmbedded: 0,
      chunksIndexed: 0,
      createdAt: now,
      updatedAt: now,
    };
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...this.key(job.jobId),
          gsi1pk: `TENANT#${job.tenant}`,
          gsi1sk: `JOB#${now}#${job.jobId}`,
          // Abandoned uploads expire too; the TTL is pushed back as the job moves.
          expiresAt: this.expiry(),
          ...item,
        },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return item;
  }

  async get(jobId: string): Promise<Job | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: this.key(jobId), ConsistentRead: true }),
    );
    return Item ? toJob(Item) : undefined;
  }

  /**
   * A tenant's jobs, newest first, a page at a time (the per-tenant index; eventually consistent,
   * so a job created a moment ago may show up a moment later). The cursor is opaque to callers;
   * one that is malformed or names another tenant's listing is refused with InvalidJobCursorError.
   */
  async listForTenant(
    tenant: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<{ jobs: Job[]; cursor?: string }> {
    const partition = `TENANT#${tenant}`;
    const { Items = [], LastEvaluatedKey } = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: "gsi1",
        KeyConditionExpression: "gsi1pk = :tenant AND begins_with(gsi1sk, :jobs)",
        ExpressionAttributeValues: { ":tenant": partition, ":jobs": "JOB#" },
        ScanIndexForward: false,
        Limit: options.limit ?? 20,
        ...(options.cursor ? { ExclusiveStartKey: decodeJobCursor(options.cursor, partition) } : {}),
      }),
    );
    return {
      jobs: Items.map(toJob),
      ...(LastEvaluatedKey ? { cursor: Buffer.from(JSON.stringify(LastEvaluatedKey)).toString("base64url") } : {}),
    };
  }

  /**
   * Moves a job forward to `to` (recording when), optionally setting attributes with it.
   * Returns false when the job is missing or already at or past `to`: replays are no-ops.
   */
  async advance(
    jobId: string,
    to: JobState,
    set: Partial<Pick<Job, "chunksTotal" | "size" | "error">> = {},
  ): Promise<boolean> {
    const from = statesBefore(to);
    const names: Record<string, string> = { "#state": "state", "#stages": "stages", "#to": to };
    const values: Record<string, unknown> = { ":to": to, ":now": new Date().toISOString(), ":expires": this.expiry() };
    const assignments = ["#state = :to", "#stages.#to = :now", "updatedAt = :now", "expiresAt = :expires"];
    for (const [attribute, value] of Object.entries(set)) {
      names[`#${attribute}`] = attribute;
      values[`:${attribute}`] = value;
      assignments.push(`#${attribute} = :${attribute}`);
    }
    from.forEach((state, i) => {
      values[`:from${i}`] = state;
    });
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: `SET ${assignments.join(", ")}`,
          ConditionExpression: `attribute_exists(pk) AND #state IN (${from.map((_, i) => `:from${i}`).join(", ")})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Counts one batch of chunks for a stage exactly once: the batch's marker and the counter
   * increment commit together, and a marker that already exists cancels both.
   * Returns false when this batch was counted before.
   */
  async countBatch(jobId: string, stage: "embedded" | "indexed", batchId: string, chunks: number): Promise<boolean> {
    const counter = stage === "embedded" ? "chunksEmbedded" : "chunksIndexed";
    const now = new Date().toISOString();
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: { pk: `JOB#${jobId}`, sk: `DONE#${stage}#${batchId}`, chunks, at: now, expiresAt: this.expiry() },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
            {
              Update: {
                TableName: this.table,
                Key: this.key(jobId),
                UpdateExpression: "ADD #counter :n SET updatedAt = :now",
                ConditionExpression: "attribute_exists(pk)",
                ExpressionAttributeNames: { "#counter": counter },
                ExpressionAttributeValues: { ":n": chunks, ":now": now },
              },
            },
          ],
        }),
      );
      return true;
    } catch (error) {
      if (
        error instanceof TransactionCanceledException &&
        error.CancellationReasons?.[0]?.Code === "ConditionalCheckFailed"
      ) {
        return false;
      }
      throw error;
    }
  }

  /** True when this batch was already counted for the stage (its work can be skipped). */
  async hasCounted(jobId: string, stage: "embedded" | "indexed", batchId: string): Promise<boolean> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: `JOB#${jobId}`, sk: `DONE#${stage}#${batchId}` },
        ConsistentRead: true,
        ProjectionExpression: "pk",
      }),
    );
    return Item !== undefined;
  }

  /** Marks the job COMPLETED once every chunk is indexed; true only for the call that completes it. */
  async completeIfDone(jobId: string): Promise<boolean> {
    const now = new Date().toISOString();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: "SET #state = :done, #stages.#done = :now, updatedAt = :now, expiresAt = :expires",
          ConditionExpression:
            "chunksTotal > :zero AND chunksIndexed >= chunksTotal AND #state IN (:embedding, :indexing)",
          ExpressionAttributeNames: { "#state": "state", "#stages": "stages", "#done": "COMPLETED" },
          ExpressionAttributeValues: {
            ":done": "COMPLETED",
            ":now": now,
            ":expires": this.expiry(),
            ":zero": 0,
            ":embedding": "EMBEDDING",
            ":indexing": "INDEXING",
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Fails the job with a reason a user can read, unless it already completed or failed. */
  async fail(jobId: string, reason: string): Promise<boolean> {
    return this.advance(jobId, "FAILED", { error: reason });
  }

  /**
   * Re-opens a FAILED job at `state` for a redrive: its counters and batch markers stay, so the
   * replayed batches only add what was never counted.
   */
  async reopen(jobId: string, state: JobState): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: "SET #state = :state, updatedAt = :now REMOVE #error",
          ConditionExpression: "#state = :failed",
          ExpressionAttributeNames: { "#state": "state", "#error": "error" },
          ExpressionAttributeValues: { ":state": state, ":failed": "FAILED", ":now": new Date().toISOString() },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Remembers the latest error a stage hit, so a dead-lettered batch can name its cause. */
  async noteError(jobId: string, message: string): Promise<void> {
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: "SET lastError = :message",
          ConditionExpression: "attribute_exists(pk)",
          ExpressionAttributeValues: { ":message": message.slice(0, 1000) },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  }

  private expiry(): number {
    return Math.floor(Date.now() / 1000) + this.retentionDays * 86_400;
  }
}

/** A job item without its table keys and TTL. */
function toJob(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, expiresAt: _e, ...job } = item;
  return job as unknown as Job;
}

export class InvalidJobCursorError extends Error {
  constructor() {
    super("the cursor is not one this listing issued");
    this.name = "InvalidJobCursorError";
  }
}

/** A listing cursor back to the index key it was made from, checked against the caller's partition. */
function decodeJobCursor(cursor: string, partition: string): Record<string, string> {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw new InvalidJobCursorError();
  }
  const names = ["pk", "sk", "gsi1pk", "gsi1sk"];
  const record = key as Record<string, unknown>;
  const wellFormed =
    typeof key === "object" &&
    key !== null &&
    Object.keys(record).length === names.length &&
    names.every((name) => typeof record[name] === "string");
  if (!wellFormed || record.gsi1pk !== partition) throw new InvalidJobCursorError();
  return record as Record<string, string>;
}
