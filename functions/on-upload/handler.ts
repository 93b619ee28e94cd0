import type { S3Event } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { reasonOf, retryTransient } from "../../shared/adapters/faults.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { countingFailures } from "../../shared/adapters/metrics.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { matchesDeclaredType } from "../../shared/domain/extract.ts";
import { checkUpload } from "../../shared/stages/on-upload.ts";
import { withObservability } from "../middleware.ts";

/** S3 ObjectCreated on the upload bucket: check the file, mark the job UPLOADED, publish documents.uploaded. */
const config = loadFunctionConfig("on-upload");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
const publisher = publisherFor("on-upload", config);

export const handler = withObservability<S3Event, void>("on-upload", async (event, context, { logger, pipeline }) => {
  // An upload on-upload refuses (too large, not what was declared) fails its job: bad input.
  const checkedJobs = countingFailures(jobs, pipeline, "bad-input");
  for (const record of event.Records) {
    const bucket = record.s3.bucket.name;
    // S3 event keys are URL-encoded, with spaces as '+'.
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
    // Transient faults (a broker failing over) are tried again for most of the invocation's time;
    // past that, S3's asynchronous retries and then the sweeper take the upload up again.
    const outcome = await retryTransient(
      () =>
        checkUpload(bucket, key, {
          jobs: checkedJobs,
          objects,
          maxUploadBytes: config.MAX_UPLOAD_BYTES,
          matchesDeclaredType,
          publish: (message) =>
            publisher.publish(config.TOPIC_DOCUMENTS_UPLOADED, [
              { key: message.document.documentId, value: JSON.stringify(message) },
            ]),
        }),
      {
        budgetMs: context.getRemainingTimeInMillis() - 5_000,
        onRetry: (error, attempt) =>
          logger.warn("transient fault, trying again", { key, attempt, error: reasonOf(error) }),
      },
    );
    if (outcome.kind === "accepted") {
      logger.info("upload accepted", {
        jobId: outcome.message.jobId,
        documentId: outcome.message.document.documentId,
        tenant: outcome.message.tenant,
        key,
        etag: outcome.message.etag,
      });
    } else if (outcome.kind === "rejected") {
      logger.warn("upload rejected", { jobId: outcome.jobId, reason: outcome.reason });
    } else {
      logger.info("upload ignored", { key, reason: outcome.reason });
    }
  }
});
