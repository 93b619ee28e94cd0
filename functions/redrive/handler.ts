import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient, s3Client } from "../../shared/aws-clients.ts";
import { loadConfig } from "../../shared/config.ts";
import { type DeadLetter, listDeadLetters, redrive } from "../../shared/dead-letters.ts";
import { JobStore } from "../../shared/job-store.ts";
import type { JobState } from "../../shared/jobs.ts";
import { publisherFor } from "../../shared/kafka.ts";
import { ObjectStore } from "../../shared/object-store.ts";

/**
 * Invoked by an operator (`aws lambda invoke`): lists the dead letters not yet replayed (dryRun),
 * or replays them onto their topics and re-opens their jobs, optionally only one tenant's.
 */
const config = loadConfig([
  "JOBS_TABLE",
  "DEAD_LETTER_BUCKET",
  "KAFKA_BROKERS",
  "KAFKA_SASL_MECHANISM",
  "AWS_REGION",
  "TOPIC_DOCUMENTS_UPLOADED",
  "TOPIC_CHUNKS_TO_EMBED",
  "TOPIC_CHUNKS_EMBEDDED",
  "JOB_RETENTION_DAYS",
]);
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

export async function handler(
  event: RedriveRequest | null | undefined,
): Promise<{ deadLetters: DeadLetter[] } | { redriven: DeadLetter[] }> {
  const tenant = event?.tenant || undefined;
  const bucket = config.DEAD_LETTER_BUCKET;
  if (event?.dryRun) {
    const deadLetters = await listDeadLetters({ objects, bucket }, tenant);
    logger.info("dead letters listed", { tenant, count: deadLetters.length });
    return { deadLetters };
  }
  const result = await redrive(
    {
      objects,
      bucket,
      jobs,
      publish: (topic, messages) => publisher.publish(topic, messages),
      topicStates,
    },
    tenant,
  );
  logger.info("dead letters redriven", {
    tenant,
    count: result.redriven.length,
    keys: result.redriven.map((letter) => letter.key),
  });
  return result;
}
