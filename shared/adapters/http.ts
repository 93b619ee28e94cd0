import type { APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { z } from "zod";

/** HTTP plumbing for the API handlers: JSON responses, typed errors, the caller's tenant. */

export type ApiEvent = APIGatewayProxyEventV2WithJWTAuthorizer;
export type ApiResult = APIGatewayProxyStructuredResultV2;

/** An error with the HTTP status and machine-readable code a client receives. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResult => ({
  statusCode,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

export const errorBody = (code: string, message: string, details?: unknown) => ({
  error: { code, message, ...(details === undefined ? {} : { details }) },
});

/** The tenant named by the token's tenant claim (API Gateway's JWT authorizer already verified it). */
export function tenantOf(event: ApiEvent, claim: string): string {
  const tenant = event.requestContext.authorizer?.jwt?.claims?.[claim];
  if (typeof tenant !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
    throw new HttpError(403, "NO_TENANT", `the token carries no valid "${claim}" claim`);
  }
  return tenant;
}

/** Parses and validates a JSON body; every problem is named in the 400 answer. */
export function parseBody<S extends z.ZodType>(event: ApiEvent, schema: S): z.output<S> {
  let raw: unknown;
  try {
    const text = event.isBase64Encoded ? Buffer.from(event.body ?? "", "base64").toString("utf8") : (event.body ?? "");
    raw = JSON.parse(text || "null");
  } catch {
    throw new HttpError(400, "INVALID_JSON", "the request body is not valid JSON");
  }
  return validate(schema, raw);
}

function validate<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
    const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join("; ");
    throw new HttpError(400, "INVALID_REQUEST", summary, issues);
  }
  return parsed.data;
}

/** Validates the query string the same way (API Gateway joins repeated parameters with commas). */
export function parseQuery<S extends z.ZodType>(event: ApiEvent, schema: S): z.output<S> {
  return validate(schema, event.queryStringParameters ?? {});
}

/**
 * Wraps an API handler: HttpErrors become their JSON answer, anything else a logged 500 that
 * leaks nothing.
 */
export function httpHandler(
  handle: (event: ApiEvent) => Promise<ApiResult>,
  onUnexpected: (error: unknown) => void = (error) => console.error(error),
): (event: ApiEvent) => Promise<ApiResult> {
  return async (event) => {
    try {
      return await handle(event);
    } catch (error) {
      if (error instanceof HttpError)
        return json(error.statusCode, errorBody(error.code, error.message, error.details));
      onUnexpected(error);
      return json(500, errorBody("INTERNAL", "internal error"));
    }
  };
}
