import { dynamoDocumentClient } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { chunkGroup, collectionKey } from "../../shared/domain/messages.ts";
import { Embedder } from "../../shared/ml/embedder.ts";
import { modelPaths } from "../../shared/ml/model-files.ts";
import { embedGroups } from "../../shared/stages/embed.ts";
import { kafkaStage } from "../middleware.ts";

/** chunks.to-embed → one batched ONNX pass over every chunk of the batch → chunks.embedded. */
const config = loadFunctionConfig("embed");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
// One ONNX session per execution environment, created during init.
const embedder = await Embedder.load(modelPaths(config.MODEL_DIR).embedder);
const publisher = publisherFor("embed", config);

export const handler = kafkaStage({
  serviceName: "embed",
  message: chunkGroup,
  jobs,
  async run(groups, logger) {
    const result = await embedGroups(groups, {
      jobs,
      embed: (texts) => embedder.embed(texts),
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
    logger.info("embedded", { ...result, groups: groups.length });
  },
});
