import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FunctionHost } from "./function-host.ts";

/** Lambda retries a failed asynchronous invocation twice; AWS waits about 1 then 2 minutes, locally seconds. */
const ASYNC_RETRY_DELAYS_MS = [1_000, 2_000];
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/**
 * The Lambda Invoke API for function-to-function calls (what the AWS SDK's `InvokeCommand` sends when
 * `AWS_ENDPOINT_URL_LAMBDA` points here): `RequestResponse` runs the function and answers with its result
 * (a function error as `X-Amz-Function-Error: Unhandled` and the error object, as Lambda does), `Event`
 * answers 202 at once and runs it in the background with Lambda's two retries, `DryRun` answers 204.
 * Requests are not authenticated (like the rest of the local runtime's IAM).
 */
export class LambdaInvokeApi {
  private server: Server | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly hostFor: (nameOrArn: string) => FunctionHost,
    private readonly log: (line: string) => void,
  ) {}

  async listen(host = "127.0.0.1"): Promise<string> {
    const server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) send(response, 500, { message: (error as Error).message });
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return `http://${host}:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.inFlight]);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const match = INVOKE_PATH.exec((request.url ?? "").split("?")[0] ?? "");
    if (request.method !== "POST" || !match) {
      send(response, 404, { message: `unsupported Lambda API call ${request.method} ${request.url}` });
      return;
    }
    const name = decodeURIComponent(match[1] as string);
    let target: FunctionHost;
    try {
      target = this.hostFor(name);
    } catch {
      send(
        response,
        404,
        { Type: "User", message: `Function not found: ${name}` },
        { "x-amzn-errortype": "ResourceNotFoundException" },
      );
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    let event: unknown;
    try {
      event = body.length === 0 ? {} : JSON.parse(body);
    } catch {
      send(
        response,
        400,
        { Type: "User", message: "Could not parse request body into json" },
        { "x-amzn-errortype": "InvalidRequestContentException" },
      );
      return;
    }
    const type = String(request.headers["x-amz-invocation-type"] ?? "RequestResponse");
    if (type === "DryRun") {
      send(response, 204, undefined);
      return;
    }
    if (type === "Event") {
      send(response, 202, undefined);
      const run = this.invokeAsync(target, event).finally(() => this.inFlight.delete(run));
      this.inFlight.add(run);
      return;
    }
    const result = await target.invoke(event);
    if (result.ok) send(response, 200, result.value ?? null, { "x-amz-executed-version": "$LATEST" });
    else {
      send(response, 200, result.error, { "x-amz-executed-version": "$LATEST", "x-amz-function-error": "Unhandled" });
    }
  }

  private async invokeAsync(target: FunctionHost, event: unknown): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const result = await target.invoke(event);
      if (result.ok) return;
      const delay = ASYNC_RETRY_DELAYS_MS[attempt];
      if (delay === undefined) {
        this.log(`asynchronous invocation of ${target.definition.name} failed ${attempt + 1} times: dropped`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(body === undefined ? undefined : JSON.stringify(body));
}
