import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FunctionHost } from "../../localstack/emulator/function-host.ts";
import { HttpApi } from "../../localstack/emulator/http-api.ts";
import { mintToken, verifyToken } from "../../localstack/platform/tokens.ts";

const fixture = fileURLToPath(new URL("./fixtures/handlers.ts", import.meta.url));
const definition = (exportName: string) => ({
  name: exportName,
  modulePath: fixture,
  exportName,
  environment: {},
  timeoutSeconds: 5,
  memoryMb: 128,
  concurrency: 2,
});
const respond = new FunctionHost(definition("respond"), () => {});
const failing = new FunctionHost(definition("fail"), () => {});
const api = new HttpApi(
  [
    { method: "POST", path: "/things/{status}", target: respond, jwtAudience: ["datadistiller"] },
    { method: "GET", path: "/boom", target: failing, jwtAudience: ["datadistiller"] },
    { method: "GET", path: "/public/{proxy+}", target: respond },
  ],
  { verifyJwt: verifyToken },
);
let base = "";
let token = "";

beforeAll(async () => {
  base = await api.listen(0);
  token = await mintToken({ tenant: "acme", audience: "datadistiller" });
});

afterAll(async () => {
  await api.close();
  await Promise.all([respond.close(), failing.close()]);
});

describe("local HTTP API", () => {
  it("answers /health without a token", async () => {
    const response = await fetch(`${base}/health`);
    expect(response.status).toBe(200);
  });

  it("rejects a missing, forged or wrong-audience token with 401", async () => {
    const wrongAudience = await mintToken({ tenant: "acme", audience: "someone-else" });
    for (const authorization of [undefined, "Bearer not-a-jwt", `Bearer ${wrongAudience}`]) {
      const response = await fetch(`${base}/things/201`, {
        method: "POST",
        headers: authorization ? { authorization } : {},
      });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ message: "Unauthorized" });
    }
  });

  it("sends a payload format 2.0 event with the JWT claims, and returns the function's status and headers", async () => {
    const response = await fetch(`${base}/things/202?a=1&a=2`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ hello: "world" }),
    });
    expect(response.status).toBe(202);
    expect(response.headers.get("x-handled-by")).toBe("respond");
    const event = await response.json();
    expect(event).toMatchObject({
      version: "2.0",
      routeKey: "POST /things/{status}",
      rawPath: "/things/202",
      rawQueryString: "a=1&a=2",
      queryStringParameters: { a: "1,2" },
      pathParameters: { status: "202" },
      body: JSON.stringify({ hello: "world" }),
      isBase64Encoded: false,
      requestContext: {
        http: { method: "POST", path: "/things/202" },
        authorizer: { jwt: { claims: { tenant: "acme", aud: "datadistiller" } } },
      },
    });
  });

  it("matches greedy path parameters on routes without an authorizer", async () => {
    const response = await fetch(`${base}/public/a/b/c`);
    expect(response.status).toBe(201);
    const event = (await response.json()) as { pathParameters: Record<string, string> };
    expect(event.pathParameters).toEqual({ proxy: "a/b/c" });
  });

  it("answers 500 when the function fails and 404 for unknown routes", async () => {
    const failed = await fetch(`${base}/boom`, { headers: { authorization: `Bearer ${token}` } });
    expect(failed.status).toBe(500);
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
  });
});
