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
  jobIds: string[];
  tenants: string[];
  /** The job ids of each tenant in the batch. */
  jobsByTenant: Record<string, string[]>;
}

/** What one tenant may see of a dead letter: its own jobs, not its neighbours' in the batch. */
export type TenantDeadLetter = Omit<DeadLetter, "jobsByTenant">;

export function tenantView(letter: DeadLetter, tenant: string): TenantDeadLetter {
  const { jobsByTenant, ...rest } = letter;
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

/** Fails every job a dead-lettered batch carried, with the last error its stage recorded. */
export async function failJobsOfDeadLetter(letter: DeadLetter, jobs: JobStore): Promise<void> {
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
