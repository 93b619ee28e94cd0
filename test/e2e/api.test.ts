/**
 * The HTTP API's contract on the whole platform (real Kafka, S3 server, DynamoDB Local): the
 * OpenAPI document served without a token, one error shape for every error (401s included), and
 * inputs that must be ordinary (metadata keys JavaScript treats specially, filenames S3 would
 * normalise, tenant claims that are not tenant ids).
 */
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, type DataDistillerClient, uploadFile } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { mintToken } from "../../localstack/platform/tokens.ts";
import { buildOpenApiDocument } from "../../shared/api/openapi.ts";
import { problem } from "../../shared/api/schemas.ts";
import { startTestPlatform, tenantClient } from "../support/platform.ts";

let platform: Platform;
let api: DataDistillerClient;
let token: string;
let base: string;
const logs: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line));
  base = platform.runtime.apiUrl;
  ({ client: api, token } = await tenantClient(platform, "api"));
}, 600_000);

afterAll(async () => {
  await platform?.stop();
});

/** A raw request: status, headers and parsed body. */
async function call(method: string, path: string, options: { token?: string; body?: string } = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** Asserts an RFC 9457 problem with this status and code. */
function expectProblem(answer: Awaited<ReturnType<typeof call>>, status: number, code: string) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers.get("content-type")).toBe("application/problem+json");
  expect(problem.strict().parse(answer.body)).toMatchObject({ type: "about:blank", status, code });
}

describe("the document", () => {
  it("GET /openapi.json answers without a token: the document the schemas generate", async () => {
    const answer = await call("GET", "/openapi.json");
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });
});

describe("one error shape", () => {
  it("401 for a missing, malformed, expired or foreign token, as a problem with WWW-Authenticate", async () => {
    const expired = await mintToken({ tenant: "acme", audience: "datadistiller", expiresIn: "-1m" });
    const foreign = await mintToken({ tenant: "acme", audience: "someone-else" });
    for (const [path, method, bearer] of [
      ["/jobs", "GET", undefined],
      ["/search", "POST", "not-a-jwt"],
      ["/uploads", "POST", expired],
      ["/dead-letters", "GET", foreign],
      ["/documents/doc-1", "DELETE", undefined],
      ["/collections/default", "GET", undefined],
      ["/collections/default/migrations", "POST", foreign],
    ] as const) {
      const answer = await call(method, path, {
        ...(bearer ? { token: bearer } : {}),
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      expectProblem(answer, 401, "UNAUTHORIZED");
      expect(answer.headers.get("www-authenticate")).toMatch(/^Bearer realm="datadistiller"/);
    }
  });

  it("403 with the reason for a tenant claim that is not a tenant id; nothing is created under it", async () => {
    for (const tenant of ["..", ".", "a/b", "../escape"]) {
      const bad = await mintToken({ tenant, audience: "datadistiller" });
      const answer = await call("POST", "/uploads", {
        token: bad,
        body: JSON.stringify({ filename: "x.txt", contentType: "text/plain", size: 1 }),
      });
      expectProblem(answer, 403, "INVALID_TENANT");
      expect(answer.body.detail).toContain(JSON.stringify(tenant));
    }
    const env = platform.env;
    const s3 = new S3Client({ endpoint: env.S3_ENDPOINT, forcePathStyle: true });
    const bucket = [...platform.runtime.names].find(([id]) => id.startsWith("StorageUploads"))?.[1];
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "uploads/." }));
    expect(listed.Contents ?? []).toEqual([]);
  });

  it("400, 404 and 405 are problems too; a 405 names the allowed methods", async () => {
    expectProblem(await call("POST", "/search", { token, body: "{not json" }), 400, "INVALID_JSON");
    const invalid = await call("POST", "/search", { token, body: JSON.stringify({ query: "", k: 0, extra: 1 }) });
    expectProblem(invalid, 400, "INVALID_REQUEST");
    expect(invalid.body.errors.map((error: { pointer: string }) => error.pointer).sort()).toEqual(["", "/k", "/query"]);
    expectProblem(await call("GET", "/jobs/not-a-uuid", { token }), 404, "JOB_NOT_FOUND");
    expectProblem(await call("GET", `/jobs/${crypto.randomUUID()}`, { token }), 404, "JOB_NOT_FOUND");
    expectProblem(await call("DELETE", "/documents/doc-missing", { token }), 404, "DOCUMENT_NOT_FOUND");
    expectProblem(await call("GET", "/no/such/route", {}), 404, "NOT_FOUND");
    const wrongMethod = await call("DELETE", "/uploads", { token });
    expectProblem(wrongMethod, 405, "METHOD_NOT_ALLOWED");
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });

  it("the clients surface the problem's detail and code", async () => {
    const error = await api
      .requestUpload({ filename: "a.exe", contentType: "application/x-msdownload", size: 10 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("UNSUPPORTED_CONTENT_TYPE");
    expect((error as ApiError).message).toMatch(/^HTTP 415: content type application\/x-msdownload is not accepted/);
  });
});

describe("inputs that must stay ordinary", () => {
  /** Uploads a small text file with this filename and metadata and waits for its job. */
  async function ingest(filename: string, metadata: Record<string, string | number | boolean>, text: string) {
    const bytes = new TextEncoder().encode(text);
    const ticket = await api.requestUpload({ filename, contentType: "text/plain", size: bytes.byteLength, metadata });
    await uploadFile(ticket.upload, bytes, "text/plain");
    return api.waitForJob(ticket.jobId, { timeoutMs: 240_000, intervalMs: 500 });
  }

  it("every accepted filename yields a working upload URL and a job that completes (the key holds no filename)", async () => {
    const names = ["..", ".", "../../etc/passwd", "a/b/c.txt", "  spaced  name .txt", "名前.txt", "%2e%2e", "?#&=.txt"];
    const jobs = await Promise.all(
      names.map((filename, i) => ingest(filename, { n: i }, `Zebrafinch ${i} sings over the quarry at dawn.`)),
    );
    for (const [i, job] of jobs.entries()) {
      expect(job.state, `${names[i]}: ${job.error ?? ""}`).toBe("COMPLETED");
      expect(job.filename).toBe(names[i]?.trim());
    }
  }, 300_000);

  it("metadata keys JavaScript treats specially are ordinary keys: stored, and filtered on exactly", async () => {
    const metadata = { constructor: "y", prototype: "p", toString: "t", valueOf: 7, big: 1e300, tiny: 5e-324 };
    const job = await ingest("special-keys.txt", metadata, "Quasarwhistle notes about the constructor of the quay.");
    expect(job.state, job.error).toBe("COMPLETED");
    const found = await api.search({
      query: "quasarwhistle",
      mode: "bm25",
      filters: { metadata: { constructor: "y", big: 1e300 } },
    });
    expect(found.results.map((result) => result.documentId)).toEqual([job.documentId]);
    const none = await api.search({
      query: "quasarwhistle",
      mode: "bm25",
      filters: { metadata: { constructor: "z" } },
    });
    expect(none.results).toEqual([]);
  }, 300_000);

  it("__proto__ as a metadata key or filter is a 400 naming it, never silently dropped", async () => {
    const upload = await call("POST", "/uploads", {
      token,
      body: '{"filename":"p.txt","contentType":"text/plain","size":1,"metadata":{"__proto__":"x"}}',
    });
    expectProblem(upload, 400, "INVALID_REQUEST");
    expect(upload.body.errors[0].pointer).toBe("/metadata/__proto__");
    const search = await call("POST", "/search", {
      token,
      body: '{"query":"q","filters":{"metadata":{"__proto__":"x"}}}',
    });
    expectProblem(search, 400, "INVALID_REQUEST");
    expect(search.body.errors[0].pointer).toBe("/filters/metadata/__proto__");
  });
});
