import { Logger } from "@aws-lambda-powertools/logger";
import { z } from "zod";
import { dynamoDocumentClient } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, parseQuery, tenantOf } from "../../shared/adapters/http.ts";
import { InvalidJobCursorError, JobStore } from "../../shared/adapters/job-store.ts";
import { jobView } from "../../shared/domain/jobs.ts";

/**
 * GET /jobs/{id}: the job's state, counts, stage times and failure reason, for its own tenant only.
 * GET /jobs: the caller's jobs, newest first, a page at a time (`?limit=&cursor=`).
 */
const config = loadFunctionConfig("job-status");
const logger = new Logger({ serviceName: "job-status" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE);

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(1024).optional(),
});

export const handler = httpHandler(
  async (event) => {
    const tenant = tenantOf(event, config.TENANT_CLAIM);
    const now = new Date();
    const jobId = event.pathParameters?.id;
    if (jobId === undefined) {
      const { limit, cursor } = parseQuery(event, listQuery);
      try {
        const page = await jobs.listForTenant(tenant, { limit, ...(cursor ? { cursor } : {}) });
        return json(
          200,
          { jobs: page.jobs.map((job) => jobView(job, now, config.STALL_AFTER_MINUTES)), cursor: page.cursor },
          { "cache-control": "no-store" },
        );
      } catch (error) {
        if (error instanceof InvalidJobCursorError) throw new HttpError(400, "INVALID_CURSOR", error.message);
        throw error;
      }
    }
    const job = await jobs.get(jobId);
    // Another tenant's job is answered exactly like a missing one: ids reveal nothing.
    if (!job || job.tenant !== tenant) throw new HttpError(404, "JOB_NOT_FOUND", `no job ${jobId}`);
    return json(200, jobView(job, now, config.STALL_AFTER_MINUTES), { "cache-control": "no-store" });
  },
  (error) => logger.error("job-status failed", error as Error),
);
