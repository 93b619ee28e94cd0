import type { ScheduledEvent } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { countingFailures } from "../../shared/adapters/metrics.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { matchesDeclaredType } from "../../shared/domain/extract.ts";
import { autoRedrive } from "../../shared/stages/dead-letters.ts";
import { checkUpload } from "../../shared/stages/on-upload.ts";
import { sweepUploads } from "../../shared/stages/sweeper.ts";
import { withObservability } from "../middleware.ts";

/**
 * Runs every minute (an EventBridge schedule): jobs whose upload never arrived fail with a reason,
 * uploads whose event was lost are taken up, and batches dead-lettered by transient faults are
 * redriven once Kafka takes them again. It acts as of the scheduled event's time.
 */
const config = loadFunctionConfig("sweeper");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
const publisher = publisherFor("sweeper", config);

export const handler = withObservability<Partial<ScheduledEvent> | undefined, unknown>(
  "sweeper",
  async (event, _context, { logger, pipeline }) => {
    const scheduled = Date.parse(event?.time ?? "");
    const now = new Date(Number.isNaN(scheduled) ? Date.now() : Math.max(scheduled, Date.now()));
    const uploads = await sweepUploads(now, {
      jobs: countingFailures(jobs, pipeline, "upload-missing"),
      objects,
      bucket: config.UPLOAD_BUCKET,
      check: (bucket, key) =>
        checkUpload(bucket, key, {
          jobs: countingFailures(jobs, pipeline, "bad-input"),
          objects,
          maxUploadBytes: config.MAX_UPLOAD_BYTES,
          matchesDeclaredType,
          publish: (message) =>
            publisher.publish(config.TOPIC_DOCUMENTS_UPLOADED, [
              { key: message.document.documentId, value: JSON.stringify(message) },
            ]),
        }),
    });
    const letters = await autoRedrive({
      objects,
      bucket: config.DEAD_LETTER_BUCKET,
      jobs: countingFailures(jobs, pipeline, "dead-lettered"),
      publish: (topic, messages) => publisher.publish(topic, messages),
      topicStates: {},
    });
    const summary = {
      uploadsRecovered: uploads.recovered,
      uploadsExpired: uploads.expired,
      uploadsWaiting: uploads.waiting.length,
      deadLettersRedriven: letters.redriven.map((letter) => letter.key),
      deadLettersWaiting: letters.waiting.map((letter) => letter.key),
      jobsExhausted: letters.exhausted,
    };
    logger.info("swept", summary);
    return summary;
  },
);
