import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { type ApiEvent, type ApiResult, HttpError, httpHandler, json, tenantOf } from "../../shared/adapters/http.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import type { JobState } from "../../shared/domain/jobs.ts";
import {
  type DeadLetter,
  listDeadLetters,
  type RedriveDeps,
  redrive,
  type TenantDeadLetter,
  tenantView,
} from "../../shared/stages/dead-letters.ts";

/**
 * Invoked by an operator (`aws lambda invoke`): lists the dead letters not yet replayed (dryRun),
 * or replays them onto their topics and re-opens their jobs, optionally only one tenant's.
 * Behind the HTTP API (`GET /dead-letters`, `POST /dead-letters/redrive`) it does the same for
 * the caller's tenant only.
 */
const config = loadFunctionConfig("redrive");
const logger = new Logger({ serviceName: "redrive" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
const publisher = publisherFor("redrive", config);
/** The state a job re-enters when a batch of each topic is replayed (the stage that consumes it). */
const topicStates: Record<string, JobState> = {
  [config.TOPIC_DOCUMENTS_UPLOADED]: "UPLOADED",
  [config.TOPIC_CHUNKS_TO_EMBED]: "EMBEDDING",
  [config.TOPIC_CHUNKS_EMBEDDED]: "INDEXING",
};

export interface RedriveRequest {
  /** Only the dead letters that carry this tenant's jobs. */
  tenant?: string;
  /** List what would be replayed, change nothing. */
  dryRun?: boolean;
}

const deps: RedriveDeps = {
  objects,
  bucket: config.DEAD_LETTER_BUCKET,
  jobs,
  publish: (topic, messages) => publisher.publish(topic, messages),
  topicStates,
};

async function list(tenant: string | undefined): Promise<{ deadLetters: DeadLetter[] }> {
  const deadLetters = await listDeadLetters(deps, tenant);
  logger.info("dead letters listed", { tenant, count: deadLetters.length });
  return { deadLetters };
}

async function replay(tenant: string | undefined): Promise<{ redriven: DeadLetter[] }> {
  const result = await redrive(deps, tenant);
  logger.info("dead letters redriven", {
    tenant,
    count: result.redriven.length,
    keys: result.redriven.map((letter) => letter.key),
  });
  return result;
}

const httpApi = httpHandler(
  async (event) => {
    const tenant = tenantOf(event, config.TENANT_CLAIM);
    switch (event.routeKey) {
      // A batch can carry several tenants' jobs: a tenant sees only its own job ids.
      case "GET /dead-letters": {
        const { deadLetters } = await list(tenant);
        return json(
          200,
          { deadLetters: deadLetters.map((letter) => tenantView(letter, tenant)) } satisfies {
            deadLetters: TenantDeadLetter[];
          },
          { "cache-control": "no-store" },
        );
      }
      case "POST /dead-letters/redrive": {
        const { redriven } = await replay(tenant);
        return json(200, { redriven: redriven.map((letter) => tenantView(letter, tenant)) });
      }
      default:
        throw new HttpError(404, "NOT_FOUND", `no route ${event.routeKey}`);
    }
  },
  (error) => logger.error("redrive failed", error as Error),
);

const isApiEvent = (event: unknown): event is ApiEvent =>
  typeof event === "object" && event !== null && "routeKey" in event && "requestContext" in event;

export async function handler(
  event: RedriveRequest | ApiEvent | null | undefined,
): Promise<{ deadLetters: DeadLetter[] } | { redriven: DeadLetter[] } | ApiResult> {
  if (isApiEvent(event)) return httpApi(event);
  const tenant = event?.tenant || undefined;
  return event?.dryRun ? list(tenant) : replay(tenant);
}
