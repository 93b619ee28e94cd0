import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient } from "../../shared/adapters/aws-clients.ts";
import { authenticatorFor } from "../../shared/adapters/bearer-auth.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, parsePath, parseQuery } from "../../shared/adapters/http.ts";
import { InvalidJobCursorError, JobStore } from "../../shared/adapters/job-store.ts";
import { jobListQuery, jobPath } from "../../shared/api/schemas.ts";
import { jobView } from "../../shared/domain/jobs.ts";
import { withLambdaContext } from "../middleware.ts";

/**
 * GET /jobs/{id}: the job's state, counts, stage times and failure reason, for its own tenant only.
 * GET /jobs: the caller's jobs, newest first, a page at a time (`?limit=&cursor=`).
 */
const config = loadFunctionConfig("job-status");
const logger = new Logger({ serviceName: "job-status" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE);
const authenticate = authenticatorFor(config);
const noStore = { "cache-control": "no-store" };

export const handler = withLambdaContext(
  logger,
  httpHandler(
    { authenticate, onUnexpected: (error) => logger.error("job-status failed", error as Error) },
    async (event, { tenant }) => {
      const now = new Date();
      if (event.routeKey === "GET /jobs") {
        const { limit, cursor } = parseQuery(event, jobListQuery);
        try {
          const page = await jobs.listForTenant(tenant, { limit, ...(cursor ? { cursor } : {}) });
          const views = page.jobs.map((job) => jobView(job, now, config.STALL_AFTER_MINUTES));
          return json(200, { jobs: views, ...(page.cursor ? { cursor: page.cursor } : {}) }, noStore);
        } catch (error) {
          if (error instanceof InvalidJobCursorError) throw new HttpError("INVALID_CURSOR", error.message);
          throw error;
        }
      }
      const notFound = () => new HttpError("JOB_NOT_FOUND", `no job ${event.pathParameters?.id ?? ""}`);
      const { id } = parsePath(event, jobPath, notFound);
      const job = await jobs.get(id);
      // Another tenant's job is answered exactly like a missing one: ids reveal nothing.
      if (!job || job.tenant !== tenant) throw notFound();
      return json(200, jobView(job, now, config.STALL_AFTER_MINUTES), noStore);
    },
  ),
);
