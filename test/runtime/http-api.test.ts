import { fileURLToPath } from "node:url";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FunctionHost } from "../../localstack/emulator/function-host.ts";
import { HttpApi } from "../../localstack/emulator/http-api.ts";
import { LambdaApi } from "../../localstack/emulator/lambda-api.ts";
import { localTokenHandler, mintToken, verifyToken } from "../../localstack/platform/tokens.ts";

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

  it("sends what no route matches to a $default route, with routeKey $default", async () => {
    const withDefault = new HttpApi([
      { method: "GET", path: "/known", target: failing },
      { method: "ANY", path: "$default", target: respond },
    ]);
    const url = await withDefault.listen(0);
    try {
      const response = await fetch(`${url}/things/%E0%A4%A?x=1`, { method: "PATCH" });
      expect(response.status).toBe(201);
      const event = (await response.json()) as { routeKey: string; rawPath: string; requestContext: { http: object } };
      expect(event.routeKey).toBe("$default");
      expect(event.rawPath).toBe("/things/%E0%A4%A");
      expect(event.requestContext.http).toMatchObject({ method: "PATCH" });
    } finally {
      await withDefault.close();
    }
  });
});

describe("local Lambda Invoke API", () => {
  it("invokes a function by name as the AWS SDK does: result, or the error with X-Amz-Function-Error", async () => {
    const lambda = new LambdaApi((name) => ({ respond, fail: failing })[name]);
    const endpoint = await lambda.listen();
    try {
      const client = new LambdaClient({
        endpoint,
        region: "us-east-1",
        credentials: { accessKeyId: "x", secretAccessKey: "x" },
      });
      const ok = await client.send(
        new InvokeCommand({ FunctionName: "respond", Payload: JSON.stringify({ hello: "world" }) }),
      );
      expect(ok.FunctionError).toBeUndefined();
      expect(JSON.parse(Buffer.from(ok.Payload ?? []).toString())).toMatchObject({ statusCode: 201 });
      const failed = await client.send(new InvokeCommand({ FunctionName: "fail", Payload: "{}" }));
      expect(failed.FunctionError).toBe("Unhandled");
      await expect(client.send(new InvokeCommand({ FunctionName: "missing" }))).rejects.toThrow(/not found/i);
      // A body that is not JSON is refused, as Lambda does, and the API keeps serving.
      const garbled = await fetch(`${endpoint}/2015-03-31/functions/respond/invocations`, {
        method: "POST",
        body: "{not json",
      });
      expect(garbled.status).toBe(400);
      expect(garbled.headers.get("x-amzn-errortype")).toBe("InvalidRequestContentException");
      expect((await client.send(new InvokeCommand({ FunctionName: "respond", Payload: "{}" }))).FunctionError).toBe(
        undefined,
      );
    } finally {
      await lambda.close();
    }
  });
});

describe("local token endpoint", () => {
  it("mints a verifiable token for a tenant id the API accepts, and refuses any other with the rule", async () => {
    const tokens = new HttpApi([], { localHandlers: [localTokenHandler()] });
    const url = await tokens.listen(0);
    try {
      const minted = await fetch(`${url}/local/token?tenant=acme-1.eu`);
      expect(minted.status).toBe(200);
      const { token: issued, tenant } = (await minted.json()) as { token: string; tenant: string };
      expect(tenant).toBe("acme-1.eu");
      expect(await verifyToken(issued, ["datadistiller"])).toMatchObject({ tenant: "acme-1.eu" });
      for (const bad of ["", "..", "a:b", "a/b", "-acme", "x".repeat(65)]) {
        const refused = await fetch(`${url}/local/token?tenant=${encodeURIComponent(bad)}`);
        expect(refused.status, bad).toBe(400);
        expect(((await refused.json()) as { message: string }).message).toMatch(/a tenant id is 1-64 characters/);
      }
    } finally {
      await tokens.close();
    }
  });
});
