import { z } from "zod";
import type { JobStore } from "../adapters/job-store.ts";
import type { ObjectStore } from "../adapters/object-store.ts";
import type { JobState } from "../domain/jobs.ts";

/**
 * Dead letters: batches a Kafka event source gave up on, as Lambda writes them to the S3
 * on-failure destination (metadata plus the whole event). They name their jobs, which are failed
 * with the last error seen, and can be replayed onto their topic once the cause is fixed.
 */

const failedBatch = z.object({
  requestContext: z.object({ functionArn: z.string(), approximateInvokeCount: z.number().optional() }).loose(),
  responseContext: z.object({ functionError: z.string().optional() }).loose().optional(),
  timestamp: z.string(),
  payload: z.object({
    records: z.record(
      z.string(),
      z.array(
        z.object({
          topic: z.string(),
          partition: z.number(),
          offset: z.number(),
          key: z.string().optional(),
          value: z.string(),
          headers: z.array(z.record(z.string(), z.array(z.number()))).optional(),
        }),
      ),
    ),
  }),
});
export type FailedBatch = z.infer<typeof failedBatch>;

export interface DeadLetter {
  key: string;
  functionName: string;
  topic: string;
  records: number;
  failedAt: string;
  attempts?: number;
  /**
   * True when the function itself failed (an error it threw, a timeout, a crash): the batch is
   * not retried automatically. False when the function answered that transient faults kept these
   * records from completing (a partial batch response): the sweeper redrives such a batch.
   */
  functionFailed: boolean;
  jobIds: string[];
  tenants: string[];
  /** The job ids of each tenant in the batch. */
  jobsByTenant: Record<string, string[]>;
}

/** What one tenant may see of a dead letter: its own jobs, not its neighbours' in the batch. */
export type TenantDeadLetter = Omit<DeadLetter, "jobsByTenant" | "functionFailed">;

export function tenantView(letter: DeadLetter, tenant: string): TenantDeadLetter {
  const { jobsByTenant, functionFailed: _internal, ...rest } = letter;
  return { ...rest, jobIds: jobsByTenant[tenant] ?? [], tenants: [tenant] };
}

export const REDRIVEN_PREFIX = "redriven/";

export function parseFailedBatch(body: Uint8Array | string): FailedBatch {
  return failedBatch.parse(JSON.parse(typeof body === "string" ? body : Buffer.from(body).toString("utf8")));
}

/** The messages of a failed batch, decoded; our messages all carry jobId and tenant. */
export function batchMessages(batch: FailedBatch) {
  return Object.values(batch.payload.records)
    .flat()
    .map((record) => {
      const value = Buffer.from(record.value, "base64").toString("utf8");
      let parsed: { jobId?: unknown; tenant?: unknown } = {};
      try {
        parsed = JSON.parse(value);
      } catch {
        // Not one of ours: replayed as it is, tied to no job.
      }
      return {
        topic: record.topic,
        key: record.key === undefined ? undefined : Buffer.from(record.key, "base64"),
        value: Buffer.from(record.value, "base64"),
        headers: Object.fromEntries(
          (record.headers ?? [])
            .flatMap((header) => Object.entries(header))
            .map(([name, bytes]) => [name, Buffer.from(bytes)]),
        ),
        jobId: typeof parsed.jobId === "string" ? parsed.jobId : undefined,
        tenant: typeof parsed.tenant === "string" ? parsed.tenant : undefined,
      };
    });
}

export function describeDeadLetter(key: string, batch: FailedBatch): DeadLetter {
  const messages = batchMessages(batch);
  const unique = (values: (string | undefined)[]) => [...new Set(values.filter((value): value is string => !!value))];
  return {
    key,
    functionName: batch.requestContext.functionArn.split(":").at(-1) ?? batch.requestContext.functionArn,
    topic: messages[0]?.topic ?? "",
    records: messages.length,
    failedAt: batch.timestamp,
    ...(batch.requestContext.approximateInvokeCount ? { attempts: batch.requestContext.approximateInvokeCount } : {}),
    functionFailed: (batch.responseContext?.functionError ?? "Unhandled") !== "",
    jobIds: unique(messages.map((message) => message.jobId)),
    tenants: unique(messages.map((message) => message.tenant)),
    jobsByTenant: Object.fromEntries(
      unique(messages.map((message) => message.tenant)).map((tenant) => [
        tenant,
        unique(messages.filter((message) => message.tenant === tenant).map((message) => message.jobId)),
      ]),
    ),
  };
}

/**
 * What becomes of the jobs of a new dead letter. When the function itself failed on the batch,
 * every job it carried fails, with the last error its stage recorded. When transient faults kept
 * the records from completing, the jobs stay open: the sweeper redrives the batch once the cause
 * is gone (`autoRedrive`), and the jobs note why they wait.
 */
export async function failJobsOfDeadLetter(letter: DeadLetter, jobs: JobStore): Promise<void> {
  if (!letter.functionFailed) {
    await jobs.noteErrors(
      letter.jobIds,
      `${letter.functionName}: dead-lettered after transient faults; redriven automatically once the cause is gone`,
    );
    return;
  }
  for (const jobId of letter.jobIds) {
    const job = await jobs.get(jobId);
    const cause = job?.lastError ? `: ${job.lastError}` : "";
    await jobs.fail(
      jobId,
      `${letter.functionName} gave up on a batch of ${letter.topic} after ${letter.attempts ?? "its"} attempts${cause}`,
    );
  }
}

export interface RedriveDeps {
  objects: ObjectStore;
  bucket: string;
  jobs: JobStore;
  publish: (
    topic: string,
    messages: { key?: Buffer; value: Buffer; headers: Record<string, Buffer> }[],
  ) => Promise<void>;
  /** The state a job re-enters when a batch of each topic is replayed. */
  topicStates: Record<string, JobState>;
}

/** Lists dead letters not yet replayed, optionally only those touching a tenant's jobs. */
export async function listDeadLetters(
  deps: Pick<RedriveDeps, "objects" | "bucket">,
  tenant?: string,
): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  for (const object of await deps.objects.list(deps.bucket, "")) {
    if (object.key.startsWith(REDRIVEN_PREFIX)) continue;
    const letter = describeDeadLetter(object.key, parseFailedBatch(await deps.objects.read(deps.bucket, object.key)));
    if (!tenant || letter.tenants.includes(tenant)) letters.push(letter);
  }
  return letters.sort((a, b) => a.failedAt.localeCompare(b.failedAt));
}

/**
 * Replays dead letters onto their topics: the failed jobs re-open at the stage the batch belongs
 * to (their counters and batch markers are intact, so nothing is counted twice), the records are
 * republished, and the dead letter moves under redriven/ so it is replayed once.
 */
export async function redrive(deps: RedriveDeps, tenant?: string): Promise<{ redriven: DeadLetter[] }> {
  const redriven: DeadLetter[] = [];
  for (const letter of await listDeadLetters(deps, tenant)) {
    const body = await deps.objects.read(deps.bucket, letter.key);
    const messages = batchMessages(parseFailedBatch(body));
    const state = deps.topicStates[letter.topic];
    for (const jobId of letter.jobIds) if (state) await deps.jobs.reopen(jobId, state);
    for (const topic of new Set(messages.map((message) => message.topic))) {
      await deps.publish(
        topic,
        messages.filter((message) => message.topic === topic),
      );
    }
    await deps.objects.write(deps.bucket, `${REDRIVEN_PREFIX}${letter.key}`, body, "application/json");
    await deps.objects.delete(deps.bucket, letter.key);
    redriven.push(letter);
  }
  return { redriven };
}

/** Automatic redrives of one job before its transient faults count as permanent. */
export const MAX_AUTO_REDRIVES = 3;

/**
 * The sweeper's dead-letter duty: batches dead-lettered because of transient faults are replayed
 * onto their topic once that works again (a failed publish leaves them for the next run), each
 * job at most MAX_AUTO_REDRIVES times (then it fails with its last error). Batches the function
 * itself failed on wait for an operator's redrive.
 */
export async function autoRedrive(
  deps: RedriveDeps,
): Promise<{ redriven: DeadLetter[]; exhausted: string[]; waiting: DeadLetter[] }> {
  const result = { redriven: [] as DeadLetter[], exhausted: [] as string[], waiting: [] as DeadLetter[] };
  for (const letter of await listDeadLetters(deps)) {
    if (letter.functionFailed) continue;
    const body = await deps.objects.read(deps.bucket, letter.key);
    for (const jobId of letter.jobIds) {
      const job = await deps.jobs.get(jobId);
      if (job && job.state !== "COMPLETED" && job.state !== "FAILED" && (job.autoRedrives ?? 0) >= MAX_AUTO_REDRIVES) {
        await deps.jobs.fail(
          jobId,
          `gave up after ${MAX_AUTO_REDRIVES} automatic redrives${job.lastError ? `: ${job.lastError}` : ""}`,
        );
        result.exhausted.push(jobId);
      }
    }
    const messages = batchMessages(parseFailedBatch(body));
    try {
      for (const topic of new Set(messages.map((message) => message.topic))) {
        await deps.publish(
          topic,
          messages.filter((message) => message.topic === topic),
        );
      }
    } catch {
      // The cause is not gone yet (Kafka unreachable): the next run tries again.
      result.waiting.push(letter);
      continue;
    }
    for (const jobId of letter.jobIds) await deps.jobs.countAutoRedrive(jobId);
    await deps.objects.write(deps.bucket, `${REDRIVEN_PREFIX}${letter.key}`, body, "application/json");
    await deps.objects.delete(deps.bucket, letter.key);
    result.redriven.push(letter);
  }
  return result;
}
