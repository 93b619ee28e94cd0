import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { authenticatorFor } from "../../shared/adapters/bearer-auth.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, parseBody } from "../../shared/adapters/http.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { PipelineMetrics } from "../../shared/adapters/metrics.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { requestUpload, UploadRejected, uploadRequest } from "../../shared/stages/upload.ts";
import { withLambdaContext } from "../middleware.ts";

/** POST /uploads: validate, create the job (PENDING_UPLOAD), answer 202 with a presigned upload. */
const config = loadFunctionConfig("upload-url");
const logger = new Logger({ serviceName: "upload-url" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
const authenticate = authenticatorFor(config);
const metrics = new PipelineMetrics("upload-url");

export const handler = withLambdaContext(
  logger,
  httpHandler(
    { authenticate, onUnexpected: (error) => logger.error("upload-url failed", error as Error) },
    async (event, { tenant }) => {
      const request = parseBody(event, uploadRequest);
      try {
        const response = await requestUpload(
          tenant,
          request,
          {
            bucket: config.UPLOAD_BUCKET,
            allowedContentTypes: config.ALLOWED_CONTENT_TYPES,
            maxUploadBytes: config.MAX_UPLOAD_BYTES,
            ttlSeconds: config.UPLOAD_URL_TTL_SECONDS,
            method: config.UPLOAD_METHOD,
          },
          { jobs, objects },
        );
        metrics.add("DocumentsAccepted", 1).publish();
        logger.info("upload requested", { tenant, jobId: response.jobId, documentId: response.documentId });
        return json(202, response, { location: `/jobs/${response.jobId}` });
      } catch (error) {
        if (error instanceof UploadRejected) throw new HttpError(error.code, error.message);
        throw error;
      }
    },
  ),
);
