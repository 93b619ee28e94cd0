import { Logger } from "@aws-lambda-powertools/logger";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { authenticatorFor } from "../../shared/adapters/bearer-auth.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { type ApiEvent, HttpError, httpHandler, json, parseBody, parsePath } from "../../shared/adapters/http.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { syncS3Prefix } from "../../shared/adapters/model-sync.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { collectionPath, indexPath, migrationPath } from "../../shared/api/schemas.ts";
import type { ReembedSegment } from "../../shared/domain/messages.ts";
import { EmbedderPool } from "../../shared/ml/embedder-pool.ts";
import {
  CollectionError,
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
 *
 * Outside the VPC (it verifies bearer tokens against the issuer's keys): a migration's re-embed
 * requests go to Kafka through the migration-fanout function, which it invokes.
 */
const config = loadFunctionConfig("collections");
const logger = new Logger({ serviceName: "collections" });
const authenticate = authenticatorFor(config);
const db = dynamoDocumentClient();
const manifests = new ManifestStore(db, config.JOBS_TABLE);
const jobs = new JobStore(db, config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const s3 = s3Client();
const objects = new ObjectStore(s3);
const lambda = new LambdaClient({});
// Models load only for the evaluation gate, on first use; from S3 they are copied to /tmp during init.
if (config.MODEL_S3_URI) await syncS3Prefix(s3, config.MODEL_S3_URI, config.MODEL_DIR);
const embedders = new EmbedderPool(config.MODEL_DIR, config.EMBEDDING_MODELS);
const search = new SearchService({
  manifests,
  blobs: { read: (key) => objects.read(config.INDEX_BUCKET, key) },
  embed: (text, model) => embedders.embedQuery(text, model),
  defaultModel: config.EMBEDDING_MODEL,
});

/** Requests per invocation of migration-fanout (its FANOUT_BATCH): well under Lambda's 6 MB payload. */
const FANOUT_BATCH = 1000;

async function publishReembeds(requests: ReembedSegment[]): Promise<void> {
  for (let start = 0; start < requests.length; start += FANOUT_BATCH) {
    const result = await lambda.send(
      new InvokeCommand({
        FunctionName: config.MIGRATION_FANOUT_FUNCTION,
        Payload: JSON.stringify({ requests: requests.slice(start, start + FANOUT_BATCH) }),
      }),
    );
    if (result.FunctionError) {
      const payload = Buffer.from(result.Payload ?? new Uint8Array()).toString("utf8");
      throw new Error(`publishing the re-embed requests failed: ${payload.slice(0, 500)}`);
    }
  }
}

const deps = {
  manifests,
  jobs,
  publishReembeds,
  search: search.search.bind(search),
  enabledModels: config.EMBEDDING_MODELS,
  deleteObjects: async (keys: string[]) => {
    for (const key of keys) await objects.delete(config.INDEX_BUCKET, key).catch(() => undefined);
  },
};

const collectionNotFound = (event: ApiEvent) =>
  new HttpError("COLLECTION_NOT_FOUND", `no collection ${event.pathParameters?.name ?? ""}`);
const migrationNotFound = (event: ApiEvent) =>
  new HttpError("MIGRATION_NOT_FOUND", `no migration ${event.pathParameters?.id ?? ""}`);
const indexNotFound = (event: ApiEvent) =>
  new HttpError("INDEX_NOT_FOUND", `no index ${event.pathParameters?.index ?? ""}`);

/** cutover's body is optional: none is `{}`. */
const optionalBody = (event: ApiEvent): ApiEvent => (event.body ? event : { ...event, body: "{}" });

async function route(event: ApiEvent, tenant: string) {
  switch (event.routeKey) {
    case "GET /collections/{name}": {
      const { name } = parsePath(event, collectionPath, () => collectionNotFound(event));
      return json(200, await describeCollection(tenant, name, deps), { "cache-control": "no-store" });
    }
    case "POST /collections/{name}/migrations": {
      const { name } = parsePath(event, collectionPath, () => collectionNotFound(event));
      const migration = await startMigration(tenant, name, parseBody(event, migrationRequest), deps);
      logger.info("migration started", { tenant, collection: name, migration: migration.migrationId });
      return json(202, migration, {
        location: `/collections/${encodeURIComponent(name)}/migrations/${encodeURIComponent(migration.migrationId)}`,
      });
    }
    case "GET /collections/{name}/migrations/{id}": {
      const { name, id } = parsePath(event, migrationPath, () => migrationNotFound(event));
      return json(200, await getMigration(tenant, name, id, deps), { "cache-control": "no-store" });
    }
    case "POST /collections/{name}/migrations/{id}/cutover": {
      const { name, id } = parsePath(event, migrationPath, () => migrationNotFound(event));
      const body = parseBody(optionalBody(event), cutOverRequest);
      return json(200, await cutOver(tenant, name, id, body, deps));
    }
    case "POST /collections/{name}/migrations/{id}/rollback": {
      const { name, id } = parsePath(event, migrationPath, () => migrationNotFound(event));
      return json(200, await rollBack(tenant, name, id, deps));
    }
    case "DELETE /collections/{name}/indexes/{index}": {
      const { name, index } = parsePath(event, indexPath, () => indexNotFound(event));
      return json(200, await dropIndex(tenant, name, index, deps));
    }
    default:
      throw new HttpError("NOT_FOUND", `no route ${event.routeKey}`);
  }
}

export const handler = httpHandler(
  { authenticate, onUnexpected: (error) => logger.error("collections failed", error as Error) },
  async (event, { tenant }) => {
    try {
      return await route(event, tenant);
    } catch (error) {
      // The collection's state refuses the request: its code fixes the status (404, 409, 400).
      if (error instanceof CollectionError) throw new HttpError(error.code, error.message);
      throw error;
    }
  },
);
