import { Logger } from "@aws-lambda-powertools/logger";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { type ApiEvent, HttpError, httpHandler, json, parseBody, tenantOf } from "../../shared/adapters/http.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { collectionKey } from "../../shared/domain/messages.ts";
import { EmbedderPool } from "../../shared/ml/embedder-pool.ts";
import {
  CollectionError,
  type CollectionErrorKind,
  collectionParam,
  cutOver,
  cutOverRequest,
  describeCollection,
  dropIndex,
  getMigration,
  migrationRequest,
  rollBack,
  startMigration,
} from "../../shared/stages/collections.ts";
import { SearchService } from "../../shared/stages/search.ts";

/**
 * A collection's indexes and its migration to another embedding model:
 *   GET    /collections/{name}                               indexes, active index, model, migration
 *   POST   /collections/{name}/migrations {model, evaluation?} start re-embedding into a new index (202)
 *   GET    /collections/{name}/migrations/{id}               progress, evaluation gate
 *   POST   /collections/{name}/migrations/{id}/cutover       the new index answers searches
 *   POST   /collections/{name}/migrations/{id}/rollback      the old one again
 *   DELETE /collections/{name}/indexes/{index}               drop an index that is not active
 */
const config = loadFunctionConfig("collections");
const logger = new Logger({ serviceName: "collections" });
const db = dynamoDocumentClient();
const manifests = new ManifestStore(db, config.JOBS_TABLE);
const jobs = new JobStore(db, config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
const publisher = publisherFor("collections", config);
// Models load only for the evaluation gate, on first use.
const embedders = new EmbedderPool(config.MODEL_DIR, config.EMBEDDING_MODELS);
const search = new SearchService({
  manifests,
  blobs: { read: (key) => objects.read(config.INDEX_BUCKET, key) },
  embed: (text, model) => embedders.embedQuery(text, model),
  defaultModel: config.EMBEDDING_MODEL,
});
const deps = {
  manifests,
  jobs,
  publishReembeds: (requests: { tenant: string; collection: string }[]) =>
    publisher.publish(
      config.TOPIC_CHUNKS_EMBEDDED,
      requests.map((request) => ({
        key: collectionKey(request.tenant, request.collection),
        value: JSON.stringify(request),
      })),
    ),
  search: search.search.bind(search),
  enabledModels: config.EMBEDDING_MODELS,
  deleteObjects: async (keys: string[]) => {
    for (const key of keys) await objects.delete(config.INDEX_BUCKET, key).catch(() => undefined);
  },
};

const STATUS: Record<CollectionErrorKind, number> = { "not-found": 404, conflict: 409, invalid: 400 };

function param(event: ApiEvent, name: string): string {
  const value = event.pathParameters?.[name] ?? "";
  if (name === "name" && !collectionParam.safeParse(value).success) {
    throw new HttpError(400, "INVALID_REQUEST", `"${value}" is not a collection name`);
  }
  return value;
}

export const handler = httpHandler(
  async (event) => {
    const tenant = tenantOf(event, config.TENANT_CLAIM);
    const collection = param(event, "name");
    try {
      switch (event.routeKey) {
        case "GET /collections/{name}":
          return json(200, await describeCollection(tenant, collection, deps));
        case "POST /collections/{name}/migrations": {
          const migration = await startMigration(tenant, collection, parseBody(event, migrationRequest), deps);
          logger.info("migration started", { tenant, collection, migration: migration.migrationId });
          return json(202, migration);
        }
        case "GET /collections/{name}/migrations/{id}":
          return json(200, await getMigration(tenant, collection, param(event, "id"), deps));
        case "POST /collections/{name}/migrations/{id}/cutover": {
          const body = event.body ? parseBody(event, cutOverRequest) : { force: false };
          return json(200, await cutOver(tenant, collection, param(event, "id"), body, deps));
        }
        case "POST /collections/{name}/migrations/{id}/rollback":
          return json(200, await rollBack(tenant, collection, param(event, "id"), deps));
        case "DELETE /collections/{name}/indexes/{index}":
          return json(200, await dropIndex(tenant, collection, param(event, "index"), deps));
        default:
          throw new HttpError(404, "NOT_FOUND", `no route ${event.routeKey}`);
      }
    } catch (error) {
      if (error instanceof CollectionError) throw new HttpError(STATUS[error.kind], error.code, error.message);
      throw error;
    }
  },
  (error) => logger.error("collections failed", error as Error),
);
