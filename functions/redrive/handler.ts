import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import type { JobState } from "../../shared/domain/jobs.ts";
import { type DeadLetter, listDeadLetters, type RedriveDeps, redrive } from "../../shared/stages/dead-letters.ts";
import { withLambdaContext } from "../middleware.ts";

/**
 * Invoked by an operator (`aws lambda invoke`): lists the dead letters not yet replayed (dryRun),
 * or replays them onto their topics and re-opens their jobs, optionally only one tenant's. The
 * HTTP API's `POST /dead-letters/redrive` (the dead-letter-api function) invokes it for the
 * caller's tenant: this function is in the VPC to reach Kafka, which keeps it from reaching the
 * token issuer's keys.
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

export const handler = withLambdaContext(
  logger,
  async (
    event: RedriveRequest | null | undefined,
  ): Promise<{ deadLetters: DeadLetter[] } | { redriven: DeadLetter[] }> => {
    const tenant = event?.tenant || undefined;
    return event?.dryRun ? list(tenant) : replay(tenant);
  },
);
