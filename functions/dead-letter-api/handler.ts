import { Logger } from "@aws-lambda-powertools/logger";
import {
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
  TooManyRequestsException,
} from "@aws-sdk/client-lambda";
import { s3Client } from "../../shared/adapters/aws-clients.ts";
import { authenticatorFor } from "../../shared/adapters/bearer-auth.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json } from "../../shared/adapters/http.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { type DeadLetter, listDeadLetters, tenantView } from "../../shared/stages/dead-letters.ts";
import { withLambdaContext } from "../middleware.ts";

/**
 * GET /dead-letters and POST /dead-letters/redrive for the caller's tenant. This function sits
 * outside the VPC, so it can reach the token issuer's keys; replaying needs Kafka, which only the
 * redrive function (in the VPC) reaches, so POST invokes it for the tenant. A batch can carry
 * several tenants' jobs: a tenant sees only its own job ids.
 */
const config = loadFunctionConfig("dead-letter-api");
const logger = new Logger({ serviceName: "dead-letter-api" });
const authenticate = authenticatorFor(config);
const objects = new ObjectStore(s3Client());
const lambda = new LambdaClient({});

async function redrive(tenant: string): Promise<DeadLetter[]> {
  let result: InvokeCommandOutput;
  try {
    result = await lambda.send(
      new InvokeCommand({ FunctionName: config.REDRIVE_FUNCTION, Payload: JSON.stringify({ tenant }) }),
    );
  } catch (error) {
    // The redrive function runs one at a time (reserved concurrency 1).
    if (error instanceof TooManyRequestsException) {
      throw new HttpError("REDRIVE_IN_PROGRESS", "a redrive is already running: try again when it is done");
    }
    throw error;
  }
  const payload = Buffer.from(result.Payload ?? new Uint8Array()).toString("utf8");
  if (result.FunctionError) throw new Error(`redrive failed: ${payload}`);
  return (JSON.parse(payload) as { redriven: DeadLetter[] }).redriven;
}

export const handler = withLambdaContext(
  logger,
  httpHandler(
    { authenticate, onUnexpected: (error) => logger.error("dead-letter-api failed", error as Error) },
    async (event, { tenant }) => {
      if (event.routeKey === "POST /dead-letters/redrive") {
        const redriven = await redrive(tenant);
        logger.info("dead letters redriven", { tenant, count: redriven.length });
        return json(200, { redriven: redriven.map((letter) => tenantView(letter, tenant)) });
      }
      const letters = await listDeadLetters({ objects, bucket: config.DEAD_LETTER_BUCKET }, tenant);
      return json(
        200,
        { deadLetters: letters.map((letter) => tenantView(letter, tenant)) },
        { "cache-control": "no-store" },
      );
    },
  ),
);
