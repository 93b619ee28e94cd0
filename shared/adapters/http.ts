import { STATUS_CODES } from "node:http";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { z } from "zod";
import { PROBLEM_CONTENT_TYPE, PROBLEMS, type Problem, type ProblemCode } from "../api/schemas.ts";

/**
 * HTTP plumbing for the API handlers: authentication, request validation against the contract's
 * zod schemas, and one error shape — every 4xx and 5xx a handler answers is an RFC 9457 problem
 * (application/problem+json) with a stable `code`.
 */

export type ApiEvent = APIGatewayProxyEventV2;
export type ApiResult = APIGatewayProxyStructuredResultV2;
export type ProblemIssue = NonNullable<Problem["errors"]>[number];

/** An error the client receives as a problem: the code fixes the status. */
export class HttpError extends Error {
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly extra: { errors?: ProblemIssue[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "HttpError";
  }

  get status(): number {
    return PROBLEMS[this.code];
  }
}

export const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResult => ({
  statusCode,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

export function problemResult(error: HttpError, requestId?: string): ApiResult {
  const body: Problem = {
    type: "about:blank",
    title: STATUS_CODES[error.status] ?? "Error",
    status: error.status,
    detail: error.message,
    code: error.code,
    ...(error.extra.errors ? { errors: error.extra.errors } : {}),
    ...(requestId ? { requestId } : {}),
  };
  return {
    statusCode: error.status,
    headers: { "content-type": PROBLEM_CONTENT_TYPE, "cache-control": "no-store", ...error.extra.headers },
    body: JSON.stringify(body),
  };
}

// ---- Request validation ---------------------------------------------------------------------------

// With the u flag a surrogate pair is one code point: only a lone surrogate is in category Cs.
const LONE_SURROGATE = /\p{Cs}/u;

type Where = ProblemIssue["in"];

/** RFC 6901: `~` and `/` escaped in each segment. */
const pointer = (path: readonly PropertyKey[]) =>
  path.map((segment) => `/${String(segment).replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");

/**
 * What a JSON body may not carry, wherever it appears: a string that is not well-formed UTF-16 (a
 * lone surrogate, which JSON can carry as `\ud800`) cannot be stored or sent on as UTF-8; a
 * `__proto__` key is JavaScript's one key that is not an ordinary property (schemas drop it
 * silently, assignments change the prototype), and it is never a valid name here.
 */
function unacceptable(value: unknown, path: PropertyKey[] = []): { path: PropertyKey[]; detail: string } | undefined {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? { path, detail: MALFORMED } : undefined;
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    if (LONE_SURROGATE.test(key)) return { path: [...path, key], detail: `a key is ${MALFORMED}` };
    if (key === "__proto__") return { path: [...path, key], detail: "__proto__ is not accepted as a key" };
    const found = unacceptable(item, [...path, key]);
    if (found) return found;
  }
  return undefined;
}
const MALFORMED = "not well-formed Unicode (a lone surrogate)";

/** zod's message, or for a bad record key the key's own message. */
const messageOf = (issue: z.core.$ZodIssue): string =>
  issue.code === "invalid_key" && issue.issues[0] ? issue.issues[0].message : issue.message;

function validate<S extends z.ZodType>(schema: S, raw: unknown, where: Where): z.output<S> {
  const refused = unacceptable(raw);
  if (refused) {
    const at = pointer(refused.path);
    throw new HttpError("INVALID_REQUEST", `${where} ${at || "/"}: ${refused.detail}`, {
      errors: [{ in: where, pointer: at, detail: refused.detail }],
    });
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((issue) => ({
    in: where,
    pointer: pointer(issue.path),
    detail: messageOf(issue),
  }));
  const summary = errors.map((error) => `${where} ${error.pointer || "/"}: ${error.detail}`).join("; ");
  throw new HttpError("INVALID_REQUEST", summary, { errors });
}

/** Parses and validates a JSON body; every problem is named in the 400 answer. */
export function parseBody<S extends z.ZodType>(event: ApiEvent, schema: S): z.output<S> {
  let raw: unknown;
  try {
    const text = event.isBase64Encoded ? Buffer.from(event.body ?? "", "base64").toString("utf8") : (event.body ?? "");
    raw = JSON.parse(text || "null");
  } catch {
    throw new HttpError("INVALID_JSON", "the request body is not valid JSON");
  }
  return validate(schema, raw, "body");
}

/** Validates the query string the same way (API Gateway joins repeated parameters with commas). */
export function parseQuery<S extends z.ZodType>(event: ApiEvent, schema: S): z.output<S> {
  return validate(schema, event.queryStringParameters ?? {}, "query");
}

/**
 * Validates the path parameters (`{id}` …). A path that cannot name a resource names none: the
 * answer is the route's 404, not a 400.
 */
export function parsePath<S extends z.ZodType>(event: ApiEvent, schema: S, notFound: () => HttpError): z.output<S> {
  const parsed = schema.safeParse(event.pathParameters ?? {});
  if (!parsed.success) throw notFound();
  return parsed.data;
}

// ---- Handlers -------------------------------------------------------------------------------------

/** Who is calling: the tenant (and subject) of a verified bearer token. */
export interface Caller {
  tenant: string;
  subject?: string;
}

export type Authenticate = (authorization: string | undefined) => Promise<Caller>;

/**
 * Wraps an authenticated API handler: the bearer token is verified first (401/403 problems),
 * HttpErrors become their problem, anything else a logged 500 problem that leaks nothing.
 */
export function httpHandler(
  options: {
    authenticate: Authenticate;
    onUnexpected?: (error: unknown, event: ApiEvent) => void;
  },
  handle: (event: ApiEvent, caller: Caller) => Promise<ApiResult>,
): (event: ApiEvent) => Promise<ApiResult> {
  return publicHttpHandler(options, async (event) =>
    handle(event, await options.authenticate(event.headers?.authorization)),
  );
}

/** The same without authentication (GET /openapi.json, unmatched routes). */
export function publicHttpHandler(
  options: { onUnexpected?: (error: unknown, event: ApiEvent) => void },
  handle: (event: ApiEvent) => Promise<ApiResult>,
): (event: ApiEvent) => Promise<ApiResult> {
  return async (event) => {
    const requestId = event.requestContext?.requestId;
    try {
      return await handle(event);
    } catch (error) {
      if (error instanceof HttpError) return problemResult(error, requestId);
      (options.onUnexpected ?? ((failure) => console.error(failure)))(error, event);
      return problemResult(new HttpError("INTERNAL", "internal error"), requestId);
    }
  };
}
