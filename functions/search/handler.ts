import { Logger } from "@aws-lambda-powertools/logger";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { dynamoDocumentClient, lambdaClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { authenticatorFor } from "../../shared/adapters/bearer-auth.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { HttpError, httpHandler, json, parseBody } from "../../shared/adapters/http.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { PipelineMetrics } from "../../shared/adapters/metrics.ts";
import { syncS3Prefix } from "../../shared/adapters/model-sync.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { SegmentFiles } from "../../shared/adapters/segment-files.ts";
import { InvalidCursorError } from "../../shared/domain/hybrid-search.ts";
import { EmbedderPool } from "../../shared/ml/embedder-pool.ts";
import { loadReranker } from "../../shared/ml/reranker-source.ts";
import { SearchService, type ShardRequest, type ShardResponse, searchRequest } from "../../shared/stages/search.ts";
import { withLambdaContext } from "../middleware.ts";

/** POST /search: BM25 + dense retrieval, fused, reranked by the cross-encoder. */
const config = loadFunctionConfig("search");
const logger = new Logger({ serviceName: "search" });
const authenticate = authenticatorFor(config);
const s3 = s3Client();
// Models on S3 (modelLocation=s3://…) are copied to /tmp once per execution environment.
if (config.MODEL_S3_URI) await syncS3Prefix(s3, config.MODEL_S3_URI, config.MODEL_DIR);
// The default embedder and the cross-encoder load once per execution environment, during init (an
// unusable cross-encoder fails init); an embedder of another model a collection uses loads on its
// first query.
const embedders = new EmbedderPool(config.MODEL_DIR, config.EMBEDDING_MODELS);
await embedders.get(config.EMBEDDING_MODEL);
const { reranker, unavailable, dir } = await loadReranker({
  modelDir: config.MODEL_DIR,
  rerankerS3Uri: config.RERANKER_S3_URI,
  s3,
});
if (reranker) logger.info("cross-encoder loaded", { dir, ...reranker.info });
else logger.warn("no cross-encoder: results are not reranked", { dir });
const objects = new ObjectStore(s3);
const metrics = new PipelineMetrics("search");
// Segments are opened by byte ranges and cached whole under /tmp across warm invocations.
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
    prefetch: (key, size) => {
      // A cold load: the segment's first download into this environment's cache.
      if (files.wouldDownload(key, size)) metrics.add("IndexColdLoads", 1);
      return files.prefetch(key, size);
    },
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
  embed: (text, model) => embedders.embedQuery(text, model),
  defaultModel: config.EMBEDDING_MODEL,
  ...(reranker ? { reranker } : {}),
  ...(unavailable ? { rerankUnavailable: unavailable } : {}),
  rerankDefaults: {
    ...(config.RERANK_METHOD ? { method: config.RERANK_METHOD } : {}),
    ...(config.RERANK_WEIGHT !== undefined ? { weight: config.RERANK_WEIGHT } : {}),
    ...(config.RERANK_DEADLINE_MS ? { deadlineMs: config.RERANK_DEADLINE_MS } : {}),
  },
});

export const handler = withLambdaContext(
  logger,
  httpHandler(
    { authenticate, onUnexpected: (error) => logger.error("search failed", error as Error) },
    async (event, { tenant }) => {
      const request = parseBody(event, searchRequest);
      try {
        // The collection is looked up under the caller's tenant only: no other tenant's data is reachable.
        const response = await service.search(tenant, request);
        if (response.rerank?.reason === "error") logger.error("rerank failed", { message: response.rerank.message });
        for (const [stage, ms] of Object.entries(response.timings ?? {})) {
          metrics.add("SearchLatency", ms, { mode: request.mode, stage });
        }
        metrics.add("SearchRequests", 1, { mode: request.mode, reranked: String(response.rerank?.reranked === true) });
        return json(200, response);
      } catch (error) {
        if (error instanceof InvalidCursorError) throw new HttpError("INVALID_CURSOR", error.message);
        throw error;
      } finally {
        metrics.publish();
      }
    },
  ),
);
