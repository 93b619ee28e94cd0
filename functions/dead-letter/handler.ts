import { Logger } from "@aws-lambda-powertools/logger";
import type { S3Event } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { describeDeadLetter, failJobsOfDeadLetter, parseFailedBatch } from "../../shared/stages/dead-letters.ts";

/**
 * S3 ObjectCreated under aws/lambda/ on the dead-letter bucket (a Kafka batch whose retries ran
 * out): fails every job the batch carried, with the last error its stage recorded.
 */
const config = loadFunctionConfig("dead-letter");
const logger = new Logger({ serviceName: "dead-letter" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());

export async function handler(event: S3Event): Promise<void> {
  for (const record of event.Records) {
    // S3 event keys are URL-encoded, with spaces as '+'.
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
    const letter = describeDeadLetter(key, parseFailedBatch(await objects.read(config.DEAD_LETTER_BUCKET, key)));
    await failJobsOfDeadLetter(letter, jobs);
    logger.warn("dead letter: jobs failed", { ...letter });
  }
}
