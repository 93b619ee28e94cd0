import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient } from "../../shared/aws-clients.ts";
import { loadConfig } from "../../shared/config.ts";
import { HttpError, httpHandler, json, tenantOf } from "../../shared/http.ts";
import { JobStore } from "../../shared/job-store.ts";
import { jobView } from "../../shared/jobs.ts";

/** GET /jobs/{id}: the job's state, counts, stage times and failure reason, for its own tenant only. */
const config = loadConfig(["JOBS_TABLE", "TENANT_CLAIM", "STALL_AFTER_MINUTES"]);
const logger = new Logger({ serviceName: "job-status" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE);

export const handler = httpHandler(
  async (event) => {
    const tenant = tenantOf(event, config.TENANT_CLAIM);
    const jobId = event.pathParameters?.id ?? "";
    const job = await jobs.get(jobId);
    // Another tenant's job is answered exactly like a missing one: ids reveal nothing.
    if (!job || job.tenant !== tenant) throw new HttpError(404, "JOB_NOT_FOUND", `no job ${jobId}`);
    return json(200, jobView(job, new Date(), config.STALL_AFTER_MINUTES), { "cache-control": "no-store" });
  },
  (error) => logger.error("job-status failed", error as Error),
);
