import { createHash } from "node:crypto";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import pRetry from "p-retry";
import { isTerminal, type Job, type JobState, statesBefore } from "../domain/jobs.ts";
import { JOBS_TABLE } from "./jobs-table.ts";

export type CountedStage = "embedded" | "indexed";

/** A job's upload check that came due. */
export interface UploadCheck {
  jobId: string;
  checkAt: string;
  /** Written as an item of its own (before checks moved onto the jobs): dropped once settled. */
  ownItem?: boolean;
}

/** A batch of chunks a stage handled, named by an id unique within its job. */
export interface BatchRef {
  jobId: string;
  batchId: string;
}

export interface BatchCount extends BatchRef {
  chunks: number;
}

/**
 * Partition keys of the upload due dates, `UPLOADCHECK#<shard>`: in the upload-check index (gsi2pk),
 * and, for checks written as items of their own before, the table's (sk `<check time>#<job id>`).
 */
const UPLOAD_CHECKS = "UPLOADCHECK";
const UPLOAD_CHECK_SHARDS = 4;

/** DynamoDB's limits per TransactWriteItems, BatchGetItem and BatchWriteItem. */
const MAX_TRANSACTION_ITEMS = 100;
const MAX_BATCH_GET_KEYS = 100;
const MAX_BATCH_WRITE_ITEMS = 25;

type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

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

  /**
   * Records a new job waiting for its upload. With `uploadCheckAt`, the job carries a due date
   * (the upload-check index, see `dueUploads`): the sweeper looks at the job then, so a job whose
   * upload never arrives (or whose upload event was lost) never waits forever. One write.
   */
  async create(
    job: Omit<Job, "state" | "stages" | "chunksTotal" | "chunksEmbedded" | "chunksIndexed" | "createdAt" | "updatedAt">,
    uploadCheckAt?: Date,
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
          ...(uploadCheckAt ? this.uploadCheck(job.jobId, uploadCheckAt) : {}),
          // Abandoned uploads expire too; the TTL is pushed back as the job moves.
          expiresAt: this.expiry(),
          ...item,
          // Stored as the JSON text: any key the API accepts stays an ordinary key (the marshaller
          // mistakes a map with a "constructor" key for a class instance) and any number stays
          // exact (DynamoDB numbers stop at 1e126 and 38 digits).
          metadata: JSON.stringify(item.metadata),
        },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return item;
  }

  /**
   * Upload checks due at `now`: jobs still waiting for an upload whose check time has come (the
   * sparse upload-check index, spread over a few partitions so no single key gets every upload;
   * eventually consistent, so a job that just moved on may still show up). Checks written as
   * items of their own, before checks moved onto the jobs, are found too. At most `limit`.
   */
  async dueUploads(now: Date, limit = 500): Promise<UploadCheck[]> {
    const due: UploadCheck[] = [];
    const { indexName, partitionKey, sortKey } = JOBS_TABLE.uploadChecksIndex;
    for (let shard = 0; shard < UPLOAD_CHECK_SHARDS && due.length < limit; shard++) {
      const onJobs = await this.queryAll(
        {
          TableName: this.table,
          IndexName: indexName,
          KeyConditionExpression: "#pk = :pk AND #sk <= :now",
          ExpressionAttributeNames: { "#pk": partitionKey, "#sk": sortKey },
          ExpressionAttributeValues: { ":pk": `${UPLOAD_CHECKS}#${shard}`, ":now": now.toISOString() },
        },
        limit - due.length,
      );
      for (const item of onJobs)
        due.push({ jobId: String(item.pk).slice("JOB#".length), checkAt: String(item[sortKey]) });
      const ownItems = await this.queryAll(
        {
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND sk <= :now",
          ExpressionAttributeValues: { ":pk": `${UPLOAD_CHECKS}#${shard}`, ":now": `${now.toISOString()}~` },
        },
        limit - due.length,
      );
      for (const item of ownItems)
        due.push({ jobId: String(item.jobId), checkAt: String(item.checkAt), ownItem: true });
    }
    return due;
  }

  /** Moves the upload check of a job still waiting for its upload to `to` (nothing if it moved on). */
  async rescheduleUploadCheck(jobId: string, to: Date): Promise<void> {
    const check = this.uploadCheck(jobId, to);
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: "SET gsi2pk = :pk, gsi2sk = :sk",
          ConditionExpression: "#state = :pending",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":pk": check.gsi2pk, ":sk": check.gsi2sk, ":pending": "PENDING_UPLOAD" },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /**
   * Drops the items of settled checks that have items of their own (written before checks moved
   * onto the jobs, whose every move removes theirs), 25 per request. Idempotent; a repeated check
   * is sent once, as BatchWriteItem refuses a request that repeats a key.
   */
  async dropUploadChecks(checks: UploadCheck[]): Promise<void> {
    const keys = [
      ...new Map(
        checks
          .filter((check) => check.ownItem)
          .map((check) => this.uploadCheckKey(check.jobId, check.checkAt))
          .map((key) => [`${key.pk}\n${key.sk}`, key]),
      ).values(),
    ];
    for (let start = 0; start < keys.length; start += MAX_BATCH_WRITE_ITEMS) {
      let pending = keys.slice(start, start + MAX_BATCH_WRITE_ITEMS).map((key) => ({ DeleteRequest: { Key: key } }));
      await pRetry(
        async () => {
          const { UnprocessedItems } = await this.db.send(
            new BatchWriteCommand({ RequestItems: { [this.table]: pending } }),
          );
          pending = (UnprocessedItems?.[this.table] ?? []) as typeof pending;
          if (pending.length > 0) throw new Error(`DynamoDB left ${pending.length} deletes unprocessed`);
        },
        { retries: 8, minTimeout: 50 },
      );
    }
  }

  /** Every item of a query, page after page, up to `limit`. */
  private async queryAll(input: QueryCommandInput, limit: number): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    while (items.length < limit) {
      const page = await this.db.send(
        new QueryCommand({ ...input, Limit: limit - items.length, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
      if (!start) break;
    }
    return items;
  }

  /** A job's place in the upload-check index. */
  private uploadCheck(jobId: string, at: Date) {
    return { gsi2pk: this.uploadCheckShard(jobId), gsi2sk: at.toISOString() };
  }

  /** The key an upload check had as an item of its own (before checks moved onto the jobs). */
  private uploadCheckKey(jobId: string, checkAt: string) {
    return { pk: this.uploadCheckShard(jobId), sk: `${checkAt}#${jobId}` };
  }

  /** `UPLOADCHECK#<shard>`: a job's checks spread over a few partitions by its id. */
  private uploadCheckShard(jobId: string): string {
    const shard = createHash("sha1").update(jobId).digest()[0] ?? 0;
    return `${UPLOAD_CHECKS}#${shard % UPLOAD_CHECK_SHARDS}`;
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
   * `passed` records when the job went through states the write skips (a stage that moves a job
   * on only once its work is done says when that work began, at no extra write).
   * Returns false when the job is missing or already at or past `to`: replays are no-ops.
   */
  async advance(
    jobId: string,
    to: JobState,
    set: Partial<Pick<Job, "chunksTotal" | "size" | "error" | "uploadEtag">> = {},
    passed: Partial<Record<JobState, string>> = {},
  ): Promise<boolean> {
    const from = statesBefore(to);
    const names: Record<string, string> = { "#state": "state", "#stages": "stages", "#to": to };
    const values: Record<string, unknown> = { ":to": to, ":now": new Date().toISOString(), ":expires": this.expiry() };
    const assignments = ["#state = :to", "#stages.#to = :now", "updatedAt = :now", "expiresAt = :expires"];
    for (const [state, at] of Object.entries(passed)) {
      names[`#passed${state}`] = state;
      values[`:passed${state}`] = at;
      assignments.push(`#stages.#passed${state} = :passed${state}`);
    }
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
          // Any move takes the job out of the upload-check index (only PENDING_UPLOAD jobs are in it).
          UpdateExpression: `SET ${assignments.join(", ")} REMOVE gsi2pk, gsi2sk`,
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

  /** Several jobs by id, read consistently in one round trip per 100 ids; missing ones are left out. */
  async getMany(jobIds: Iterable<string>): Promise<Map<string, Job>> {
    const items = await this.readKeys([...new Set(jobIds)].map((jobId) => this.key(jobId)));
    return new Map(items.map((item) => [String(item.jobId), toJob(item)]));
  }

  /** Those of `batches` the stage has not counted yet (the others' work can be skipped). */
  async uncounted<B extends BatchRef>(stage: CountedStage, batches: B[]): Promise<B[]> {
    batches = distinctBatches(batches);
    const markers = await this.readKeys(
      batches.map((batch) => this.markerKey(stage, batch)),
      "pk, sk",
    );
    const counted = new Set(markers.map((marker) => `${marker.pk}\n${marker.sk}`));
    return batches.filter((batch) => {
      const { pk, sk } = this.markerKey(stage, batch);
      return !counted.has(`${pk}\n${sk}`);
    });
  }

  /**
   * Counts one batch of chunks for a stage exactly once: the batch's marker and the counter
   * increment commit together, and a marker that already exists cancels both.
   * Returns false when this batch was counted before (or its job no longer exists).
   */
  async countBatch(jobId: string, stage: CountedStage, batchId: string, chunks: number): Promise<boolean> {
    return this.transact([this.markerPut(stage, { jobId, batchId, chunks }), this.counterUpdate(jobId, stage, chunks)]);
  }

  /**
   * Counts many batches for a stage, each exactly once, in few round trips: one transaction per
   * 100 writes (every batch's marker and one counter update per job). A replayed batch among
   * them cancels its transaction, whose batches are then counted one at a time.
   * Returns the batches this call counted.
   */
  async countBatches<B extends BatchCount>(stage: CountedStage, batches: B[]): Promise<B[]> {
    const counted: B[] = [];
    for (const part of transactionParts(distinctBatches(batches))) {
      const updates = [...chunksByJob(part)].map(([jobId, chunks]) => this.counterUpdate(jobId, stage, chunks));
      if (await this.transact([...part.map((batch) => this.markerPut(stage, batch)), ...updates])) {
        counted.push(...part);
        continue;
      }
      for (const batch of part) {
        if (await this.countBatch(batch.jobId, stage, batch.batchId, batch.chunks)) counted.push(batch);
      }
    }
    return counted;
  }

  /**
   * The index stage's bookkeeping for many batches in few round trips: each batch's marker and,
   * per job, the indexed count and the move to INDEXING. `seen` holds the jobs as read before the
   * batch was indexed; a job that changed since (or a replayed batch) cancels the transaction, and
   * its batches are then counted and advanced one at a time.
   *
   * A job whose last chunks a transaction counts is completed by that same write, once
   * `beforeCompleting` has made it searchable (so a client that sees COMPLETED finds the
   * document); its chunk total must still be the one seen. Without `beforeCompleting`, or when
   * the transaction is cancelled, jobs whose every chunk is counted are returned as `finished`:
   * the caller makes them searchable, then completes them (`completeIfDone`).
   * Returns the batches this call counted, the jobs it completed and the jobs left finished.
   */
  async countIndexed<B extends BatchCount>(
    batches: B[],
    seen: ReadonlyMap<string, Job>,
    options: { beforeCompleting?: (jobs: Job[]) => Promise<void> } = {},
  ): Promise<{ counted: B[]; finished: Job[]; completed: Job[] }> {
    const counted: B[] = [];
    const finished = new Map<string, Job>();
    const completed: Job[] = [];
    // What each job's counter is known to hold, moved along as transactions commit.
    const indexedSoFar = new Map([...seen].map(([jobId, job]) => [jobId, job.chunksIndexed]));
    for (const part of transactionParts(distinctBatches(batches))) {
      const plan = [...chunksByJob(part)].map(([jobId, chunks]) => {
        const job = seen.get(jobId);
        const before = indexedSoFar.get(jobId);
        const finishes =
          job !== undefined && before !== undefined && job.chunksTotal > 0 && before + chunks >= job.chunksTotal;
        return { jobId, chunks, job, before, finishes };
      });
      const countable = plan.every(({ before }) => before !== undefined);
      // Jobs this part finishes are shown first, then completed by the counting write itself.
      const completing = new Map(
        countable && options.beforeCompleting
          ? plan.flatMap(({ jobId, job, finishes }) => (finishes && job ? [[jobId, job] as const] : []))
          : [],
      );
      if (completing.size > 0) await options.beforeCompleting?.([...completing.values()]);
      const updates = plan.flatMap(({ jobId, chunks, before }) =>
        before === undefined ? [] : [this.indexedUpdate(jobId, chunks, before, completing.get(jobId))],
      );
      const markers = part.map((batch) => this.markerPut("indexed", batch));
      if (countable && (await this.transact([...markers, ...updates]))) {
        counted.push(...part);
        for (const { jobId, chunks, job, before, finishes } of plan) {
          indexedSoFar.set(jobId, (before ?? 0) + chunks);
          if (!finishes || !job) continue;
          if (completing.has(jobId)) completed.push(job);
          else finished.set(jobId, job);
        }
        continue;
      }
      for (const batch of part) {
        indexedSoFar.delete(batch.jobId);
        if (await this.countBatch(batch.jobId, "indexed", batch.batchId, batch.chunks)) counted.push(batch);
        await this.advance(batch.jobId, "INDEXING");
        const job = await this.get(batch.jobId);
        if (job && !isTerminal(job.state) && job.chunksTotal > 0 && job.chunksIndexed >= job.chunksTotal)
          finished.set(job.jobId, job);
      }
    }
    return { counted, finished: [...finished.values()], completed };
  }

  /**
   * Adds batches of work to their jobs' chunk totals, each exactly once (a `DONE#added#<batch>`
   * marker in the same transaction): an upload that also lands in a collection's second index
   * counts those chunks too, so it completes only once it is searchable in both.
   * Returns the batches this call added.
   */
  async addWork<B extends BatchCount>(batches: B[]): Promise<B[]> {
    const added: B[] = [];
    for (const batch of batches) {
      const ok = await this.transact([
        {
          Put: {
            TableName: this.table,
            Item: {
              pk: `JOB#${batch.jobId}`,
              sk: `DONE#added#${batch.batchId}`,
              chunks: batch.chunks,
              at: new Date().toISOString(),
              expiresAt: this.expiry(),
            },
            ConditionExpression: "attribute_not_exists(pk)",
          },
        },
        {
          Update: {
            TableName: this.table,
            Key: this.key(batch.jobId),
            UpdateExpression: "ADD chunksTotal :n SET updatedAt = :now",
            ConditionExpression: "attribute_exists(pk)",
            ExpressionAttributeValues: { ":n": batch.chunks, ":now": new Date().toISOString() },
          },
        },
      ]);
      if (ok) added.push(batch);
    }
    return added;
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

  /**
   * Counts one automatic redrive of a job still running; returns the count, or undefined when the
   * job is gone or finished (nothing to redrive for it).
   */
  async countAutoRedrive(jobId: string): Promise<number | undefined> {
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(jobId),
          UpdateExpression: "ADD autoRedrives :one SET updatedAt = :now",
          ConditionExpression: "attribute_exists(pk) AND NOT #state IN (:completed, :failed)",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: {
            ":one": 1,
            ":now": new Date().toISOString(),
            ":completed": "COMPLETED",
            ":failed": "FAILED",
          },
          ReturnValues: "UPDATED_NEW",
        }),
      );
      return Number(Attributes?.autoRedrives ?? 0);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
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

  /** Notes the same error on each of these jobs (once per job), e.g. every job of a failed batch. */
  async noteErrors(jobIds: Iterable<string>, message: string): Promise<void> {
    for (const jobId of new Set(jobIds)) await this.noteError(jobId, message);
  }

  private markerKey(stage: CountedStage, batch: BatchRef) {
    return { pk: `JOB#${batch.jobId}`, sk: `DONE#${stage}#${batch.batchId}` };
  }

  /** A batch's marker, written only if it does not exist yet. */
  private markerPut(stage: CountedStage, batch: BatchCount): TransactItem {
    return {
      Put: {
        TableName: this.table,
        Item: {
          ...this.markerKey(stage, batch),
          chunks: batch.chunks,
          at: new Date().toISOString(),
          expiresAt: this.expiry(),
        },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    };
  }

  private counterUpdate(jobId: string, stage: CountedStage, chunks: number): TransactItem {
    return {
      Update: {
        TableName: this.table,
        Key: this.key(jobId),
        UpdateExpression: "ADD #counter :n SET updatedAt = :now",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeNames: { "#counter": stage === "embedded" ? "chunksEmbedded" : "chunksIndexed" },
        ExpressionAttributeValues: { ":n": chunks, ":now": new Date().toISOString() },
      },
    };
  }

  /**
   * Adds to the indexed count of a job last seen at `seen`, moving it to INDEXING; or, given the
   * job as seen (`completes`), to COMPLETED, provided its chunk total is still the one seen.
   */
  private indexedUpdate(jobId: string, chunks: number, seen: number, completes?: Job): TransactItem {
    const completion: {
      set: string;
      condition: string;
      names: Record<string, string>;
      values: Record<string, unknown>;
    } = completes
      ? {
          set: ", #stages.#done = :now, expiresAt = :expires",
          condition: " AND chunksTotal = :total",
          names: { "#done": "COMPLETED" },
          values: { ":expires": this.expiry(), ":total": completes.chunksTotal },
        }
      : { set: "", condition: "", names: {}, values: {} };
    return {
      Update: {
        TableName: this.table,
        Key: this.key(jobId),
        UpdateExpression: `ADD chunksIndexed :n SET #state = :to, #stages.#indexing = if_not_exists(#stages.#indexing, :now), updatedAt = :now${completion.set}`,
        ConditionExpression: `chunksIndexed = :seen AND #state IN (:embedding, :indexing)${completion.condition}`,
        ExpressionAttributeNames: {
          "#state": "state",
          "#stages": "stages",
          "#indexing": "INDEXING",
          ...completion.names,
        },
        ExpressionAttributeValues: {
          ":n": chunks,
          ":to": completes ? "COMPLETED" : "INDEXING",
          ":now": new Date().toISOString(),
          ":seen": seen,
          ":embedding": "EMBEDDING",
          ":indexing": "INDEXING",
          ...completion.values,
        },
      },
    };
  }

  /**
   * Writes all or nothing. False when one of the items' conditions cancelled it (a batch counted
   * before, a job that moved on); a clash with another transaction on the same item is tried
   * again a few times; any other failure is thrown for the caller's retry.
   */
  private async transact(items: TransactItem[]): Promise<boolean> {
    const reasons = (error: unknown) =>
      error instanceof TransactionCanceledException
        ? (error.CancellationReasons ?? []).map((reason) => reason.Code)
        : [];
    try {
      await pRetry(() => this.db.send(new TransactWriteCommand({ TransactItems: items })), {
        retries: 4,
        minTimeout: 20,
        shouldRetry: ({ error }) => {
          const codes = reasons(error);
          return codes.includes("TransactionConflict") && !codes.includes("ConditionalCheckFailed");
        },
      });
      return true;
    } catch (error) {
      if (reasons(error).includes("ConditionalCheckFailed")) return false;
      throw error;
    }
  }

  /**
   * Items by key, read consistently, 100 keys a call; keys DynamoDB leaves unprocessed are asked
   * again. Repeated keys are read once (BatchGetItem refuses a request that repeats a key).
   */
  private async readKeys(keys: Record<string, string>[], projection?: string): Promise<Record<string, unknown>[]> {
    keys = [...new Map(keys.map((key) => [`${key.pk}\n${key.sk}`, key])).values()];
    const found: Record<string, unknown>[] = [];
    for (let start = 0; start < keys.length; start += MAX_BATCH_GET_KEYS) {
      let pending = keys.slice(start, start + MAX_BATCH_GET_KEYS);
      await pRetry(
        async () => {
          const { Responses, UnprocessedKeys } = await this.db.send(
            new BatchGetCommand({
              RequestItems: {
                [this.table]: {
                  Keys: pending,
                  ConsistentRead: true,
                  ...(projection ? { ProjectionExpression: projection } : {}),
                },
              },
            }),
          );
          found.push(...(Responses?.[this.table] ?? []));
          pending = (UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, string>[];
          if (pending.length > 0) throw new Error(`DynamoDB left ${pending.length} keys unprocessed`);
        },
        { retries: 8, minTimeout: 50 },
      );
    }
    return found;
  }

  private expiry(): number {
    return Math.floor(Date.now() / 1000) + this.retentionDays * 86_400;
  }
}

/**
 * Each batch once, the first of any repeats (at-least-once delivery repeats records, and a
 * transaction may touch an item only once).
 */
function distinctBatches<B extends BatchRef>(batches: B[]): B[] {
  const seen = new Set<string>();
  return batches.filter((batch) => {
    const id = `${batch.jobId}\n${batch.batchId}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Groups of batches for one transaction each: at most 100 writes (markers plus one update per job). */
function transactionParts<B extends BatchRef>(batches: B[]): B[][] {
  const parts: B[][] = [];
  let part: B[] = [];
  let jobs = new Set<string>();
  for (const batch of batches) {
    const writes = part.length + 1 + jobs.size + (jobs.has(batch.jobId) ? 0 : 1);
    if (writes > MAX_TRANSACTION_ITEMS) {
      parts.push(part);
      part = [];
      jobs = new Set();
    }
    part.push(batch);
    jobs.add(batch.jobId);
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function chunksByJob(batches: BatchCount[]): Map<string, number> {
  const sums = new Map<string, number>();
  for (const batch of batches) sums.set(batch.jobId, (sums.get(batch.jobId) ?? 0) + batch.chunks);
  return sums;
}

/** A job item without its table keys and TTL. */
function toJob(item: Record<string, unknown>): Job {
  const {
    pk: _pk,
    sk: _sk,
    gsi1pk: _g1,
    gsi1sk: _g2,
    gsi2pk: _g3,
    gsi2sk: _g4,
    expiresAt: _e,
    metadata,
    ...job
  } = item;
  // JSON text (items written before this kept a map).
  return { ...job, metadata: typeof metadata === "string" ? JSON.parse(metadata) : (metadata ?? {}) } as unknown as Job;
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
