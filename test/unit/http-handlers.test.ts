import type { Context } from "aws-lambda";
/**
 * The HTTP layer without servers: one error shape (RFC 9457 problems) for validation, auth and
 * unexpected failures; bearer tokens verified as API Gateway's JWT authorizer would; names that
 * could not be ordinary keys refused by design.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { handler as apiMeta } from "../../functions/api-meta/handler.ts";
import { bearerAuthenticator } from "../../shared/adapters/bearer-auth.ts";
import { type ApiEvent, type ApiResult, HttpError, httpHandler, json, parseBody } from "../../shared/adapters/http.ts";
import { problem, searchRequest, uploadRequest } from "../../shared/api/schemas.ts";

const event = (body: string | undefined, extra: Partial<ApiEvent> = {}): ApiEvent =>
  ({
    version: "2.0",
    routeKey: "POST /uploads",
    rawPath: "/uploads",
    rawQueryString: "",
    headers: {},
    requestContext: { requestId: "req-1", http: { method: "POST", path: "/uploads" } },
    isBase64Encoded: false,
    ...(body === undefined ? {} : { body }),
    ...extra,
  }) as ApiEvent;

const bodyOf = (result: ApiResult) => JSON.parse(String(result.body));

/** Runs parseBody inside a handler, as the functions do, and returns the answer. */
async function answer(schema: typeof uploadRequest | typeof searchRequest, body: string): Promise<ApiResult> {
  const handle = httpHandler({ authenticate: async () => ({ tenant: "t" }) }, async (request) =>
    json(200, parseBody(request, schema)),
  );
  return handle(event(body));
}

const upload = (extra: Record<string, unknown>) =>
  JSON.stringify({ filename: "a.txt", contentType: "text/plain", size: 3, ...extra });

describe("request validation", () => {
  it("a body that is not JSON is a 400 problem", async () => {
    const result = await answer(uploadRequest, "{nope");
    expect(result.statusCode).toBe(400);
    expect(result.headers?.["content-type"]).toBe("application/problem+json");
    const body = bodyOf(result);
    expect(problem.parse(body)).toEqual(body);
    expect(body).toMatchObject({ type: "about:blank", title: "Bad Request", status: 400, code: "INVALID_JSON" });
    expect(body.requestId).toBe("req-1");
  });

  it("names every problem with a JSON pointer: unknown fields, bad values", async () => {
    const body = bodyOf(await answer(uploadRequest, upload({ size: -1, colection: "x" })));
    expect(body.code).toBe("INVALID_REQUEST");
    expect(body.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ in: "body", pointer: "/size" }),
        expect.objectContaining({ in: "body", pointer: "" }),
      ]),
    );
    expect(body.detail).toMatch(/colection/);
  });

  it("JavaScript's own key names are ordinary metadata keys", async () => {
    const metadata = { constructor: "y", prototype: "p", toString: 1, hasOwnProperty: true, valueOf: "v" };
    const result = await answer(uploadRequest, upload({ metadata }));
    expect(result.statusCode).toBe(200);
    expect(bodyOf(result).metadata).toEqual(metadata);
  });

  it("__proto__ is refused wherever it appears (schemas would drop it silently), as are keys outside the grammar", async () => {
    for (const [schema, body, where] of [
      [
        uploadRequest,
        '{"filename":"a","contentType":"text/plain","size":1,"metadata":{"__proto__":"x"}}',
        "/metadata/__proto__",
      ],
      [searchRequest, '{"query":"q","filters":{"metadata":{"__proto__":"x"}}}', "/filters/metadata/__proto__"],
      [uploadRequest, '{"__proto__":{"admin":true},"filename":"a","contentType":"text/plain","size":1}', "/__proto__"],
      [uploadRequest, upload({ metadata: { "": "empty" } }), "/metadata/"],
      [uploadRequest, upload({ metadata: { "a b": 1 } }), "/metadata/a b"],
      [uploadRequest, upload({ metadata: { "..": 1 } }), "/metadata/.."],
      [searchRequest, JSON.stringify({ query: "q", filters: { metadata: { _x: 1 } } }), "/filters/metadata/_x"],
    ] as const) {
      const result = await answer(schema, body);
      expect(result.statusCode, body).toBe(400);
      expect(bodyOf(result).errors[0].pointer, body).toBe(where);
    }
  });

  it("refuses strings that are not well-formed Unicode, keys included", async () => {
    for (const body of [
      '{"filename":"\\ud800.txt","contentType":"text/plain","size":1}',
      '{"filename":"a","contentType":"text/plain","size":1,"metadata":{"k":"\\udfff"}}',
    ]) {
      const result = await answer(uploadRequest, body);
      expect(result.statusCode, body).toBe(400);
      expect(bodyOf(result).detail).toMatch(/lone surrogate/);
    }
    // A surrogate pair (an emoji) is fine.
    expect((await answer(uploadRequest, upload({ filename: "📄 notes.txt" }))).statusCode).toBe(200);
  });

  it("the bounds the document states are the bounds enforced, white space included", async () => {
    expect((await answer(uploadRequest, upload({ filename: `${"a".repeat(255)}` }))).statusCode).toBe(200);
    expect((await answer(uploadRequest, upload({ filename: ` ${"a".repeat(255)}` }))).statusCode).toBe(400);
    expect((await answer(uploadRequest, upload({ filename: "   " }))).statusCode).toBe(400);
    expect((await answer(searchRequest, JSON.stringify({ query: "q", weights: { bm25: 1e308 } }))).statusCode).toBe(
      400,
    );
  });

  it("an unexpected error is a 500 problem that leaks nothing", async () => {
    const failures: unknown[] = [];
    const handle = httpHandler(
      { authenticate: async () => ({ tenant: "t" }), onUnexpected: (error) => failures.push(error) },
      async () => {
        throw new Error("secret connection string");
      },
    );
    const result = await handle(event("{}"));
    expect(result.statusCode).toBe(500);
    expect(result.body).not.toMatch(/secret/);
    expect(bodyOf(result)).toMatchObject({ code: "INTERNAL", status: 500, title: "Internal Server Error" });
    expect(failures).toHaveLength(1);
  });
});

describe("bearer tokens", () => {
  const issuer = "https://issuer.example";
  let sign: (
    claims: Record<string, unknown>,
    options?: { expired?: boolean; audience?: string; issuer?: string },
  ) => Promise<string>;
  let forge: () => Promise<string>;
  let authenticate: ReturnType<typeof bearerAuthenticator>;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const other = await generateKeyPair("ES256");
    authenticate = bearerAuthenticator({
      issuer,
      audience: ["datadistiller"],
      tenantClaim: "tenant",
      jwks: JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), alg: "ES256" }] }),
    });
    const build = (
      claims: Record<string, unknown>,
      options: { expired?: boolean; audience?: string; issuer?: string },
    ) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "ES256" })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? "datadistiller")
        .setSubject("user-1")
        .setIssuedAt()
        .setExpirationTime(options.expired ? Math.floor(Date.now() / 1000) - 60 : "1h");
    sign = (claims, options = {}) => build(claims, options).sign(privateKey);
    forge = () => build({ tenant: "acme" }, {}).sign(other.privateKey);
  });

  const refusal = async (authorization: string | undefined) => {
    try {
      await authenticate(authorization);
    } catch (error) {
      return error as HttpError;
    }
    throw new Error("accepted");
  };

  it("a valid token names its tenant and subject", async () => {
    expect(await authenticate(`Bearer ${await sign({ tenant: "acme" })}`)).toEqual({
      tenant: "acme",
      subject: "user-1",
    });
  });

  it("answers 401 with a reason and WWW-Authenticate for every refused token", async () => {
    const cases: [string | undefined, RegExp][] = [
      [undefined, /no bearer token/],
      ["Basic dXNlcjpwYXNz", /no bearer token/],
      ["Bearer not-a-jwt", /not a well-formed JWT/],
      [`Bearer ${await sign({ tenant: "acme" }, { expired: true })}`, /expired/],
      [`Bearer ${await sign({ tenant: "acme" }, { audience: "someone-else" })}`, /audience/],
      [`Bearer ${await sign({ tenant: "acme" }, { issuer: "https://evil.example" })}`, /issuer/],
      [`Bearer ${await forge()}`, /signature/],
    ];
    for (const [authorization, reason] of cases) {
      const error = await refusal(authorization);
      expect(error, authorization).toBeInstanceOf(HttpError);
      expect(error.status).toBe(401);
      expect(error.code).toBe("UNAUTHORIZED");
      expect(error.message).toMatch(reason);
      expect(error.extra.headers?.["www-authenticate"]).toMatch(/^Bearer realm="datadistiller"/);
    }
    expect((await refusal(`Bearer ${await forge()}`)).extra.headers?.["www-authenticate"]).toMatch(
      /error="invalid_token"/,
    );
  });

  it("a tenant claim that is not a tenant id (.., slashes, empty, not a string) is a 403 with the reason", async () => {
    for (const tenant of ["..", ".", "a/b", "", "../../etc", "_x", 42, undefined, "x".repeat(65)]) {
      const error = await refusal(`Bearer ${await sign(tenant === undefined ? {} : { tenant })}`);
      expect(error.status, String(tenant)).toBe(403);
      expect(error.code).toBe("INVALID_TENANT");
      expect(error.message).toMatch(/"tenant" claim/);
    }
  });
});

describe("unmatched routes ($default)", () => {
  // The Lambda context the middy stack puts on the function's log lines.
  const context = { functionName: "api-meta", awsRequestId: "test-request" } as Context;
  const request = (method: string, path: string) =>
    apiMeta(
      event(undefined, { rawPath: path, routeKey: "$default", requestContext: { http: { method, path } } } as never),
      context,
    );

  it("a known path with another method is a 405 naming the allowed ones", async () => {
    const result = await request("PATCH", "/jobs/123");
    expect(result.statusCode).toBe(405);
    expect(result.headers?.allow).toBe("GET");
    expect(bodyOf(result)).toMatchObject({ code: "METHOD_NOT_ALLOWED", status: 405 });
  });

  it("an unknown path is a 404 problem; GET /openapi.json is the document", async () => {
    const missing = await request("GET", "/nope");
    expect(missing.statusCode).toBe(404);
    expect(bodyOf(missing)).toMatchObject({ code: "NOT_FOUND" });
    const document = await request("GET", "/openapi.json");
    expect(document.statusCode).toBe(200);
    expect(bodyOf(document).openapi).toBe("3.1.0");
  });
});
