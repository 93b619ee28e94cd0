import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { FunctionHost } from "./function-host.ts";

/** Lambda retries a failed asynchronous invocation twice (after about 1 and 2 minutes; locally seconds). */
const EVENT_RETRY_DELAYS_MS = [1_000, 2_000];

/**
 * Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`) for functions that invoke
 * others with the AWS SDK (the app points them here with AWS_ENDPOINT_URL_LAMBDA; the runtime hands
 * each function's settings this endpoint as `LocalFunction.lambdaEndpoint`). Synchronous
 * (RequestResponse) and asynchronous (Event, with Lambda's two retries of a failed one) invocations; a function error comes back with
 * X-Amz-Function-Error as Lambda sends it. Throttling is not emulated: invocations wait their turn.
 */
export class LambdaApi {
  private server: Server | undefined;
  /** Asynchronous invocations still running (close waits for them). */
  private readonly events = new Set<Promise<void>>();

  constructor(private readonly hostFor: (nameOrArn: string) => FunctionHost | undefined) {}

  async listen(host = "127.0.0.1"): Promise<string> {
    const server = createServer((request, response) => {
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        response.writeHead(status, { "content-type": "application/json", ...headers });
        response.end(typeof body === "string" ? body : JSON.stringify(body));
      };
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(request.url?.split("?")[0] ?? "");
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const target = match?.[1] ? this.hostFor(decodeURIComponent(match[1])) : undefined;
        if (request.method !== "POST" || !target) {
          return send(
            404,
            { Type: "User", message: `Function not found: ${request.url}` },
            { "x-amzn-errortype": "ResourceNotFoundException" },
          );
        }
        const text = Buffer.concat(chunks).toString("utf8");
        let event: unknown;
        try {
          event = text ? JSON.parse(text) : {};
        } catch {
          return send(
            400,
            { Type: "User", message: "Could not parse request body into json" },
            { "x-amzn-errortype": "InvalidRequestContentException" },
          );
        }
        if (request.headers["x-amz-invocation-type"] === "Event") {
          const run = invokeWithRetries(target, event).finally(() => this.events.delete(run));
          this.events.add(run);
          return send(202, "");
        }
        target.invoke(event).then(
          (result) =>
            result.ok
              ? send(200, result.value === undefined ? "null" : JSON.stringify(result.value))
              : send(200, result.error, { "x-amz-function-error": "Unhandled" }),
          (error: unknown) => send(500, { Type: "Service", message: String(error) }),
        );
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, resolve);
    });
    return `http://${host}:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.events]);
  }
}

async function invokeWithRetries(target: FunctionHost, event: unknown): Promise<void> {
  for (const delay of [...EVENT_RETRY_DELAYS_MS, undefined]) {
    const result = await target.invoke(event).catch(() => ({ ok: false }));
    if (result.ok || delay === undefined) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
