import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FunctionHost } from "./function-host.ts";

/** One route of an HTTP API (AWS::ApiGatewayV2::Route with its Lambda proxy integration). */
export interface RouteDefinition {
  method: string;
  /** Path template, e.g. `/jobs/{id}` or `/files/{proxy+}`; `$default` (method ANY) catches what no other route matches. */
  path: string;
  target: FunctionHost;
  /** Audiences the route's JWT authorizer accepts; undefined = no authorizer. */
  jwtAudience?: string[];
}

export interface CorsDefinition {
  allowOrigins: string[];
  allowMethods: string[];
  allowHeaders: string[];
  maxAgeSeconds?: number;
}

/** Extra handlers the local server answers itself (e.g. static files of the web console). */
export type LocalHandler = (request: IncomingMessage, response: ServerResponse) => boolean | Promise<boolean>;

/**
 * Checks a bearer token as a route's JWT authorizer would (signature, issuer, audience, expiry)
 * and resolves to its claims, or to undefined when API Gateway would answer 401. The emulator
 * holds no keys: whoever runs it brings the issuer it trusts locally.
 */
export type JwtVerifier = (token: string, audience: string[]) => Promise<Record<string, unknown> | undefined>;

/**
 * Serves an HTTP API as API Gateway v2 does: matches the route, runs the JWT authorizer, sends
 * the payload-format-2.0 event to the function, and turns its result into the HTTP response.
 */
export class HttpApi {
  private server: Server | undefined;

  constructor(
    private readonly routes: RouteDefinition[],
    private readonly options: { cors?: CorsDefinition; localHandlers?: LocalHandler[]; verifyJwt?: JwtVerifier } = {},
  ) {}

  async listen(port: number, host = "127.0.0.1"): Promise<string> {
    const server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        console.error("local API error", error);
        if (!response.headersSent) sendJson(response, 500, { message: "Internal Server Error" });
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, resolve);
    });
    const address = server.address() as AddressInfo;
    return `http://${host}:${address.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://localhost");
    const method = request.method ?? "GET";
    const cors = this.options.cors;
    if (cors) applyCors(request, response, cors);
    if (method === "OPTIONS" && cors) {
      response.writeHead(204).end();
      return;
    }
    for (const local of this.options.localHandlers ?? []) {
      if (await local(request, response)) return;
    }
    const match = matchRoute(this.routes, method, url.pathname);
    if (!match) {
      if (method === "GET" && url.pathname === "/health") return sendJson(response, 200, { status: "ok" });
      return sendJson(response, 404, { message: "Not Found" });
    }
    const { route, pathParameters } = match;

    let claims: Record<string, string> | undefined;
    if (route.jwtAudience) {
      const token = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1];
      // Without a verifier every token is refused, as an authorizer with an unreachable issuer would.
      const payload =
        token && this.options.verifyJwt ? await this.options.verifyJwt(token, route.jwtAudience) : undefined;
      if (!payload) return sendJson(response, 401, { message: "Unauthorized" });
      claims = Object.fromEntries(
        Object.entries(payload).map(([name, value]) => [
          name,
          Array.isArray(value) ? `[${value.join(" ")}]` : String(value),
        ]),
      );
    }

    const body = await readBody(request);
    const event = apiGatewayEvent(request, url, route, pathParameters, body, claims);
    const result = await route.target.invoke(event);
    if (!result.ok) return sendJson(response, 500, { message: "Internal Server Error" });
    writeLambdaResult(response, result.value);
  }
}

function matchRoute(routes: RouteDefinition[], method: string, path: string) {
  for (const route of routes) {
    if (route.path === DEFAULT_ROUTE) continue;
    if (route.method !== method && route.method !== "ANY") continue;
    const names: string[] = [];
    const pattern = route.path
      .replace(/[.*+?^$()|[\]\\]/g, "\\$&")
      .replace(/\\?\{([^}]+?)(\\\+)?\}/g, (_, name: string, greedy) => {
        names.push(name);
        return greedy ? "(.+)" : "([^/]+)";
      });
    const found = new RegExp(`^${pattern}$`).exec(path);
    if (found) {
      const pathParameters = Object.fromEntries(names.map((name, i) => [name, decodePathSegment(found[i + 1] ?? "")]));
      return { route, pathParameters };
    }
  }
  const fallback = routes.find((route) => route.path === DEFAULT_ROUTE);
  return fallback ? { route: fallback, pathParameters: {} } : undefined;
}

const DEFAULT_ROUTE = "$default";

/** Percent-decoded, or as it came when it is not valid percent-encoded UTF-8. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const readBody = async (request: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-www-form-urlencoded|javascript))/i;

/** The payload format 2.0 event API Gateway sends to a Lambda proxy integration. */
function apiGatewayEvent(
  request: IncomingMessage,
  url: URL,
  route: RouteDefinition,
  pathParameters: Record<string, string>,
  body: Buffer,
  claims: Record<string, string> | undefined,
) {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (name === "cookie") cookies.push(...String(value).split(/;\s*/));
    else headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const isText = body.length === 0 || TEXT_TYPES.test(headers["content-type"] ?? "");
  const now = new Date();
  const routeKey = route.path === DEFAULT_ROUTE ? DEFAULT_ROUTE : `${route.method} ${route.path}`;
  return {
    version: "2.0",
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ""),
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      ...(claims ? { authorizer: { jwt: { claims, scopes: null } } } : {}),
      domainName: headers.host ?? "localhost",
      domainPrefix: (headers.host ?? "localhost").split(".")[0],
      http: {
        method: request.method ?? "GET",
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey,
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: isText ? body.toString("utf8") : body.toString("base64") } : {}),
    isBase64Encoded: !isText,
  };
}

/**
 * Turns a handler's result into the response as API Gateway does for format 2.0: an object with
 * statusCode is a full response; anything else is sent as a 200 JSON body.
 */
function writeLambdaResult(response: ServerResponse, value: unknown): void {
  if (value && typeof value === "object" && "statusCode" in value) {
    const result = value as {
      statusCode: number;
      headers?: Record<string, string | number | boolean>;
      multiValueHeaders?: Record<string, string[]>;
      cookies?: string[];
      body?: string;
      isBase64Encoded?: boolean;
    };
    for (const [name, header] of Object.entries(result.headers ?? {})) response.setHeader(name, String(header));
    for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) response.setHeader(name, values);
    if (result.cookies?.length) response.setHeader("set-cookie", result.cookies);
    const body = result.body === undefined ? "" : result.body;
    if (!response.hasHeader("content-type") && body) response.setHeader("content-type", "application/json");
    response.writeHead(result.statusCode);
    response.end(result.isBase64Encoded ? Buffer.from(body, "base64") : body);
    return;
  }
  sendJson(response, 200, value ?? null);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

function applyCors(request: IncomingMessage, response: ServerResponse, cors: CorsDefinition): void {
  const origin = request.headers.origin;
  if (!origin) return;
  const allowed = cors.allowOrigins.includes("*") ? "*" : cors.allowOrigins.includes(origin) ? origin : undefined;
  if (!allowed) return;
  response.setHeader("access-control-allow-origin", allowed);
  response.setHeader("access-control-allow-methods", cors.allowMethods.join(","));
  response.setHeader("access-control-allow-headers", cors.allowHeaders.join(","));
  if (cors.maxAgeSeconds) response.setHeader("access-control-max-age", String(cors.maxAgeSeconds));
}
