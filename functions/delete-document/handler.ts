import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, tenantOf } from "../../shared/adapters/http.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { deleteDocument } from "../../shared/stages/documents.ts";

/** DELETE /documents/{id}: the document disappears from the tenant's search results. */
const config = loadFunctionConfig("delete-document");
const logger = new Logger({ serviceName: "delete-document" });
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);

export const handler = httpHandler(
  async (event) => {
    const tenant = tenantOf(event, config.TENANT_CLAIM);
    const documentId = event.pathParameters?.id ?? "";
    const deleted = await deleteDocument(tenant, documentId, manifests);
    if (!deleted) throw new HttpError(404, "DOCUMENT_NOT_FOUND", `no indexed document ${documentId}`);
    logger.info("document deleted", { tenant, ...deleted });
    return json(200, { deleted: true, ...deleted });
  },
  (error) => logger.error("delete-document failed", error as Error),
);
