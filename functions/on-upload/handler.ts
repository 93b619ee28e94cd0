import { Logger } from "@aws-lambda-powertools/logger";
import type { S3Event } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { matchesDeclaredType } from "../../shared/domain/extract.ts";
import { checkUpload } from "../../shared/stages/on-upload.ts";

/** S3 ObjectCreated on the upload bucket: check the file, mark the job UPLOADED, publish documents.uploaded. */
const config = loadFunctionConfig("on-upload");
const logger = new Logger({ serviceName: "on-upload" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
const publisher = publisherFor("on-upload", config);

export async function handler(event: S3Event): Promise<void> {
  for (const record of event.Records) {
    const bucket = record.s3.bucket.name;
    // S3 event keys are URL-encoded, with spaces as '+'.
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
    const outcome = await checkUpload(bucket, key, {
      jobs,
      objects,
      maxUploadBytes: config.MAX_UPLOAD_BYTES,
      matchesDeclaredType,
      publish: (message) =>
        publisher.publish(config.TOPIC_DOCUMENTS_UPLOADED, [
          { key: message.document.documentId, value: JSON.stringify(message) },
        ]),
    });
    if (outcome.kind === "accepted") {
      logger.info("upload accepted", { jobId: outcome.message.jobId, key });
    } else if (outcome.kind === "rejected") {
      logger.warn("upload rejected", { jobId: outcome.jobId, reason: outcome.reason });
    } else {
      logger.info("upload ignored", { key, reason: outcome.reason });
    }
  }
}
