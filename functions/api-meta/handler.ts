import { Logger } from "@aws-lambda-powertools/logger";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, publicHttpHandler } from "../../shared/adapters/http.ts";
import { allowedMethods, buildOpenApiDocument, matchPath } from "../../shared/api/openapi.ts";
import { withLambdaContext } from "../middleware.ts";

/**
 * GET /openapi.json (no token): the API's OpenAPI 3.1 description, generated at cold start from
 * the same zod schemas the handlers validate with.
 * $default (every request no route matches): a 405 with Allow when the path exists with other
 * methods, else a 404, both as problems, where API Gateway would answer `{"message":"Not Found"}`.
 */
// Its environment contract is empty; loading it still fails a cold start the same way as the others'.
loadFunctionConfig("api-meta");
const logger = new Logger({ serviceName: "api-meta" });
const document = JSON.stringify(buildOpenApiDocument());

export const handler = withLambdaContext(
  logger,
  publicHttpHandler({ onUnexpected: (error) => logger.error("api-meta failed", error as Error) }, async (event) => {
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath;
    if (path === "/openapi.json" && (method === "GET" || method === "HEAD")) {
      return {
        statusCode: 200,
        headers: { "content-type": "application/json", "cache-control": "public, max-age=300" },
        body: method === "HEAD" ? "" : document,
      };
    }
    const template = matchPath(path);
    if (template) {
      const allow = allowedMethods(template).join(", ");
      throw new HttpError("METHOD_NOT_ALLOWED", `${method} is not allowed on ${template}: use ${allow}`, {
        headers: { allow },
      });
    }
    throw new HttpError("NOT_FOUND", `no route for ${method} ${path}`);
  }),
);
