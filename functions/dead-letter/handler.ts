import type { S3Event } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { countingFailures } from "../../shared/adapters/metrics.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { describeDeadLetter, failJobsOfDeadLetter, parseFailedBatch } from "../../shared/stages/dead-letters.ts";
import { withObservability } from "../middleware.ts";

/**
 * S3 ObjectCreated under aws/lambda/ on the dead-letter bucket (a Kafka batch whose retries ran
 * out): fails every job of a batch the function itself failed on, with the last error its stage
 * recorded; the jobs of a batch kept back by transient faults wait for the sweeper's redrive.
 */
const config = loadFunctionConfig("dead-letter");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());

export const handler = withObservability<S3Event, void>(
  "dead-letter",
  async (event, _context, { logger, pipeline }) => {
    for (const record of event.Records) {
      // S3 event keys are URL-encoded, with spaces as '+'.
      const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
      const letter = describeDeadLetter(key, parseFailedBatch(await objects.read(config.DEAD_LETTER_BUCKET, key)));
      pipeline.add("DeadLetters", 1);
      await failJobsOfDeadLetter(letter, countingFailures(jobs, pipeline, "dead-lettered"));
      logger.warn(letter.functionFailed ? "dead letter: jobs failed" : "dead letter: waiting for automatic redrive", {
        ...letter,
      });
    }
  },
);
