import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient } from "../../shared/adapters/aws-clients.ts";
import { authenticatorFor } from "../../shared/adapters/bearer-auth.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, parsePath } from "../../shared/adapters/http.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { documentPath } from "../../shared/api/schemas.ts";
import { deleteDocument } from "../../shared/stages/documents.ts";
import { withLambdaContext } from "../middleware.ts";

/** DELETE /documents/{id}: the document disappears from the tenant's search results. */
const config = loadFunctionConfig("delete-document");
const logger = new Logger({ serviceName: "delete-document" });
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);
const authenticate = authenticatorFor(config);

export const handler = withLambdaContext(
  logger,
  httpHandler(
    { authenticate, onUnexpected: (error) => logger.error("delete-document failed", error as Error) },
    async (event, { tenant }) => {
      const notFound = () =>
        new HttpError("DOCUMENT_NOT_FOUND", `no indexed document ${event.pathParameters?.id ?? ""}`);
      const { id } = parsePath(event, documentPath, notFound);
      const deleted = await deleteDocument(tenant, id, manifests);
      if (!deleted) throw notFound();
      logger.info("document deleted", { tenant, ...deleted });
      return json(200, { deleted: true, ...deleted });
    },
  ),
);
