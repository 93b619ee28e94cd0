/**
 * Poison isolation for a Kafka-triggered stage: one bad record fails its own job and nothing
 * else. A batch is first processed together (the fast path: one model call, one produce, one
 * transaction); if that fails for a reason that is not transient, each record is processed on its
 * own, so the records that can complete do, and a record that fails alone too fails its job with
 * the reason. Transient faults are retried with backoff within the invocation's time, and what is
 * still failing is handed back to the event source as a partial batch failure (retried later from
 * that record on). Every stage is idempotent, so processing a record again is harmless.
 */

/** Where a record sits: its "topic-partition" key in the event and its offset. */
export interface RecordRef {
  partition: string;
  offset: number;
}

export interface BatchItem<M> {
  ref: RecordRef;
  message: M;
}

export interface IsolationDeps<M> {
  /** Processes messages together; idempotent (they may have been processed before, in part or whole). */
  run(messages: M[]): Promise<void>;
  /** Tries `task` again on transient faults within the time left; throws the last fault. */
  retry<T>(task: () => Promise<T>): Promise<T>;
  isTransient(error: unknown): boolean;
  /** Fails the job of a message that cannot be processed, with a reason. */
  fail(message: M, reason: string): Promise<void>;
  /** Remembers a transient fault on the jobs of these messages (the reason if they end up dead-lettered). */
  note(messages: M[], reason: string): Promise<void>;
  reasonOf(error: unknown): string;
}

export interface IsolationResult<M> {
  /** Records to report back as failed: the event source retries from the lowest of each partition. */
  retry: BatchItem<M>[];
  /** Records whose job was failed here, with the reason. */
  failed: { item: BatchItem<M>; reason: string }[];
}

export async function processIsolated<M>(items: BatchItem<M>[], deps: IsolationDeps<M>): Promise<IsolationResult<M>> {
  const result: IsolationResult<M> = { retry: [], failed: [] };
  if (items.length === 0) return result;
  try {
    await deps.retry(() => deps.run(items.map((item) => item.message)));
    return result;
  } catch (error) {
    if (deps.isTransient(error) || items.length === 1) {
      await settle(items, error, deps, result);
      return result;
    }
  }
  for (const item of items) {
    try {
      await deps.retry(() => deps.run([item.message]));
    } catch (error) {
      await settle([item], error, deps, result);
    }
  }
  return result;
}

/** Records that failed with `error`: retried later when transient, their jobs failed when not. */
async function settle<M>(items: BatchItem<M>[], error: unknown, deps: IsolationDeps<M>, result: IsolationResult<M>) {
  const reason = deps.reasonOf(error);
  if (deps.isTransient(error)) {
    await deps
      .note(
        items.map((item) => item.message),
        reason,
      )
      .catch(() => {});
    result.retry.push(...items);
    return;
  }
  for (const item of items) {
    try {
      await deps.fail(item.message, reason);
      result.failed.push({ item, reason });
    } catch {
      // The job could not be failed now (the store is unreachable): the record is tried again later.
      result.retry.push(item);
    }
  }
}

/** The partial batch response of a Kafka event source mapping (ReportBatchItemFailures). */
export interface KafkaBatchResponse {
  batchItemFailures: { itemIdentifier: { partition: string; offset: number } }[];
}

export const batchResponse = (refs: RecordRef[]): KafkaBatchResponse => ({
  batchItemFailures: refs.map((ref) => ({ itemIdentifier: { partition: ref.partition, offset: ref.offset } })),
});
