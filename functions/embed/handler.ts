import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { syncS3Prefix } from "../../shared/adapters/model-sync.ts";
import type { IndexTarget } from "../../shared/domain/messages.ts";
import { chunkGroup, collectionKey } from "../../shared/domain/messages.ts";
import { EmbedderPool } from "../../shared/ml/embedder-pool.ts";
import { embedGroups } from "../../shared/stages/embed.ts";
import { kafkaStage } from "../middleware.ts";

/** chunks.to-embed → one batched ONNX pass over every chunk of the batch → chunks.embedded. */
const config = loadFunctionConfig("embed");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
// Models on S3 (modelLocation=s3://…) are copied to /tmp once per execution environment.
if (config.MODEL_S3_URI) await syncS3Prefix(s3Client(), config.MODEL_S3_URI, config.MODEL_DIR);
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);
// One ONNX session per model and execution environment; the default model's is created during init.
const embedders = new EmbedderPool(config.MODEL_DIR, config.EMBEDDING_MODELS);
await embedders.get(config.EMBEDDING_MODEL);
// A collection's active index, kept a few seconds: a target that changed meanwhile is still safe
// (the index stage sends chunks on to the other index, or back here when an index was dropped).
const targets = new Map<string, { target: IndexTarget; until: number }>();
async function activeTarget(tenant: string, collection: string): Promise<IndexTarget> {
  const key = `${tenant}/${collection}`;
  const known = targets.get(key);
  if (known && known.until > Date.now()) return known.target;
  const manifest = await manifests.get(tenant, collection);
  const target = { index: manifest.index, model: manifest.model ?? config.EMBEDDING_MODEL };
  targets.set(key, { target, until: Date.now() + 5_000 });
  return target;
}
const publisher = publisherFor("embed", config);

export const handler = kafkaStage({
  serviceName: "embed",
  message: chunkGroup,
  jobs,
  async run(groups, logger, metrics) {
    const result = await embedGroups(groups, {
      jobs,
      embed: (texts, model) => embedders.embedPassages(texts, model),
      activeTarget,
      publish: (embedded) =>
        publisher.publish(
          config.TOPIC_CHUNKS_EMBEDDED,
          // Keyed by collection: one collection's index has one writer, in order.
          embedded.map((group) => ({
            key: collectionKey(group.tenant, group.document.collection),
            value: JSON.stringify(group),
          })),
        ),
    });
    metrics.add("ChunksEmbedded", result.counted);
    logger.info("embedded", { ...result, groups: groups.length });
  },
});
