import { Logger } from "@aws-lambda-powertools/logger";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { dynamoDocumentClient, lambdaClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, parseBody, tenantOf } from "../../shared/adapters/http.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { SegmentFiles } from "../../shared/adapters/segment-files.ts";
import { InvalidCursorError } from "../../shared/domain/hybrid-search.ts";
import { Embedder } from "../../shared/ml/embedder.ts";
import { hasModelFiles, modelPaths } from "../../shared/ml/model-files.ts";
import { Reranker } from "../../shared/ml/reranker.ts";
import { SearchService, type ShardRequest, type ShardResponse, searchRequest } from "../../shared/stages/search.ts";

/** POST /search: BM25 + dense retrieval, fused, reranked by the cross-encoder. */
const config = loadConfig([
  "JOBS_TABLE",
  "INDEX_BUCKET",
  "TENANT_CLAIM",
  "MODEL_DIR",
  "SEGMENT_CACHE_DIR",
  "SEARCH_SHARD_FUNCTIONS",
  "SHARD_MAX_CHUNKS",
  "ANN_NPROBE",
  "ANN_RESCORE",
]);
const logger = new Logger({ serviceName: "search" });
const models = modelPaths(config.MODEL_DIR);
// Both models load once per execution environment, during init.
const embedder = await Embedder.load(models.embedder);
const reranker = hasModelFiles(models.reranker) ? await Reranker.load(models.reranker) : undefined;
if (!reranker) logger.warn("no cross-encoder model found: results are not reranked", { dir: config.MODEL_DIR });
const objects = new ObjectStore(s3Client());
const files = new SegmentFiles(objects, config.INDEX_BUCKET, { cacheDir: config.SEGMENT_CACHE_DIR });
const shardFunctions = config.SEARCH_SHARD_FUNCTIONS ?? [];

/** Shard i of a large collection is searched by shard function i mod their count. */
async function invokeShard(shard: number, request: ShardRequest): Promise<ShardResponse> {
  const answer = await lambdaClient().send(
    new InvokeCommand({
      FunctionName: shardFunctions[shard % shardFunctions.length],
      Payload: new TextEncoder().encode(JSON.stringify(request)),
    }),
  );
  const payload = answer.Payload ? new TextDecoder().decode(answer.Payload) : "null";
  if (answer.FunctionError) throw new Error(`search shard ${shard} failed: ${payload}`);
  return JSON.parse(payload) as ShardResponse;
}

const service = new SearchService({
  manifests: new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE),
  blobs: {
    read: (key) => objects.read(config.INDEX_BUCKET, key),
    source: (key, size) => files.source(key, size),
    prefetch: (key, size) => files.prefetch(key, size),
    retain: (keys) => files.retain(keys),
  },
  ...(shardFunctions.length > 0 ? { shards: { maxChunks: config.SHARD_MAX_CHUNKS, invoke: invokeShard } } : {}),
  ...(config.ANN_NPROBE || config.ANN_RESCORE
    ? {
        ann: {
          ...(config.ANN_NPROBE ? { nprobe: config.ANN_NPROBE } : {}),
          ...(config.ANN_RESCORE ? { rescore: config.ANN_RESCORE } : {}),
        },
      }
    : {}),
  embed: async (text) => (await embedder.embed([text]))[0] as Float32Array,
  ...(reranker ? { rerank: (query: string, passages: string[]) => reranker.score(query, passages) } : {}),
});

export const handler = httpHandler(
  async (event) => {
    const tenant = tenantOf(event, config.TENANT_CLAIM);
    const request = parseBody(event, searchRequest);
    try {
      // The collection is looked up under the caller's tenant only: no other tenant's data is reachable.
      return json(200, await service.search(tenant, request));
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new HttpError(400, "INVALID_CURSOR", error.message);
      throw error;
    }
  },
  (error) => logger.error("search failed", error as Error),
);
