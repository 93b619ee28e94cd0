/**
 * The OpenAPI document: valid OpenAPI 3.1 (a maintained validator), generated from the schemas the
 * handlers validate with, committed up to date, and describing exactly the routes infra declares.
 */
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { ROUTES } from "../../infra/api.ts";
import { DOCUMENT_PATH, renderDocument } from "../../scripts/openapi.ts";
import type { PresignedUpload } from "../../shared/adapters/object-store.ts";
import { allowedMethods, buildOpenApiDocument, matchPath } from "../../shared/api/openapi.ts";
import {
  API_VERSION,
  type deadLetter,
  type presignedUpload,
  type Same,
  searchRequest,
  uploadRequest,
} from "../../shared/api/schemas.ts";
import { RERANK_LIMITS } from "../../shared/domain/rerank.ts";
import type { TenantDeadLetter } from "../../shared/stages/dead-letters.ts";

// The server's own types are the contract's (checked by the typecheck): shared/api imports neither
// the stages nor the adapters, so the proofs for their types live here.
const same = <A, B>(proof: Same<A, B>) => proof;
same<TenantDeadLetter, z.output<typeof deadLetter>>(true);
same<PresignedUpload, z.output<typeof presignedUpload>>(true);

describe("OpenAPI document", () => {
  const document = buildOpenApiDocument();

  it("passes the OpenAPI 3.1 schema validator", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document) as unknown as Record<string, unknown>);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("is committed up to date in docs/openapi.json (npm run openapi)", () => {
    expect(readFileSync(DOCUMENT_PATH, "utf8")).toBe(renderDocument());
  });

  it("carries the contract's version and bearer-JWT security on every operation but health and itself", () => {
    expect(document.info.version).toBe(API_VERSION);
    expect(document.components?.securitySchemes?.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(document.security).toEqual([{ bearerAuth: [] }]);
    for (const [path, item] of Object.entries(document.paths ?? {})) {
      for (const [method, operation] of Object.entries(item ?? {})) {
        const open = path === "/health" || path === "/openapi.json";
        expect(operation.security, `${method} ${path}`).toEqual(open ? [] : undefined);
        const statuses = Object.keys(operation.responses ?? {});
        if (!open) expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(["401", "403", "500"]));
        // Every error is a problem.
        for (const status of statuses.filter((code) => Number(code) >= 400)) {
          expect(operation.responses?.[status]).toMatchObject({
            $ref: expect.stringMatching(/^#\/components\/responses\//),
          });
        }
      }
    }
    for (const response of Object.values(document.components?.responses ?? {})) {
      expect(Object.keys((response as { content: object }).content)).toEqual(["application/problem+json"]);
    }
  });

  it("describes exactly the routes of the HTTP API", () => {
    const operations = Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
      Object.keys(item ?? {}).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(ROUTES.map((route) => `${route.method} ${route.path}`).sort());
  });

  it("documents request bodies as the handlers validate them: strict, with the name grammar", () => {
    const schemas = document.components?.schemas ?? {};
    expect(schemas.UploadRequest).toMatchObject({
      additionalProperties: false,
      required: ["filename", "contentType", "size"],
    });
    expect(schemas.Metadata).toMatchObject({
      propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$" },
      maxProperties: 32,
    });
    // The examples in the document are requests the API accepts.
    const upload = document.paths?.["/uploads"]?.post?.requestBody as { content: Record<string, { example: unknown }> };
    expect(uploadRequest.safeParse(upload.content["application/json"]?.example).success).toBe(true);
    const search = document.paths?.["/search"]?.post?.requestBody as { content: Record<string, { example: unknown }> };
    expect(searchRequest.safeParse(search.content["application/json"]?.example).success).toBe(true);
  });

  it("documents the rerank fields and report with the rerank domain's own limits", () => {
    type Schema = { properties: Record<string, Record<string, unknown>>; required?: string[] };
    const schemas = document.components?.schemas as Record<string, Schema>;
    expect(schemas.SearchRequest?.properties.rerankTopN).toMatchObject({
      minimum: RERANK_LIMITS.topN.min,
      maximum: RERANK_LIMITS.topN.max,
      default: RERANK_LIMITS.topN.default,
    });
    expect(schemas.SearchRequest?.properties.rerankMethod).toMatchObject({ enum: ["interpolate", "rank"] });
    expect(schemas.SearchRequest?.properties.rerankWeight).toMatchObject({ minimum: 0, maximum: 1 });
    expect(schemas.SearchRequest?.properties.rerankDeadlineMs).toMatchObject({
      maximum: RERANK_LIMITS.deadlineMs.max,
    });
    expect(schemas.SearchScores?.properties).toHaveProperty("combined");
    expect(schemas.SearchResponse?.properties.rerank).toEqual({ $ref: "#/components/schemas/RerankReport" });
    expect(schemas.SearchResponse?.required).toContain("rerank");
    expect(schemas.RerankReport?.required).toEqual(
      expect.arrayContaining(["reranked", "method", "weight", "topN", "deadlineMs", "candidates"]),
    );
    // Past the limit is a 400, not a silent cap.
    expect(searchRequest.safeParse({ query: "q", rerankTopN: RERANK_LIMITS.topN.max + 1 }).success).toBe(false);
  });

  it("matches request paths to their templates, for 405s", () => {
    expect(matchPath("/jobs/abc")).toBe("/jobs/{id}");
    expect(matchPath("/jobs")).toBe("/jobs");
    expect(matchPath("/jobs/a/b")).toBeUndefined();
    expect(matchPath("/openapiXjson")).toBeUndefined();
    expect(allowedMethods("/dead-letters/redrive")).toEqual(["POST"]);
  });
});
