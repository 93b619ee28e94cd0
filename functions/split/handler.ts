import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { countingFailures } from "../../shared/adapters/metrics.ts";
import { syncS3Prefix } from "../../shared/adapters/model-sync.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { documentSplitter } from "../../shared/domain/document-splitter.ts";
import { documentUploaded } from "../../shared/domain/messages.ts";
import { modelFiles } from "../../shared/ml/model-files.ts";
import { EMBEDDER_MAX_TOKENS, embedderTokenCounter, TextTokenizer } from "../../shared/ml/tokenizer.ts";
import { splitDocuments } from "../../shared/stages/split.ts";
import { kafkaStage } from "../middleware.ts";

/** documents.uploaded → extract, chunk, publish groups of chunks to chunks.to-embed (the fan-out). */
const config = loadFunctionConfig("split");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const s3 = s3Client();
const objects = new ObjectStore(s3);
// Models on S3 (modelLocation=s3://…) are copied to /tmp once per execution environment.
if (config.MODEL_S3_URI) await syncS3Prefix(s3, config.MODEL_S3_URI, config.MODEL_DIR);
// Chunks are measured with the default embedder's tokenizer (the registry's models share BERT's
// uncased word pieces), loaded once per execution environment.
const tokenizer = TextTokenizer.fromFile(
  modelFiles(config.MODEL_DIR, config.EMBEDDING_MODEL).tokenizer,
  EMBEDDER_MAX_TOKENS,
);
const split = documentSplitter(embedderTokenCounter(tokenizer));
const publisher = publisherFor("split", config);

export const handler = kafkaStage({
  serviceName: "split",
  message: documentUploaded,
  jobs,
  async run(messages, logger, metrics) {
    const { outcomes } = await splitDocuments(messages, {
      // A document that cannot be read fails its job here: the user's input is the cause.
      jobs: countingFailures(jobs, metrics, "bad-input"),
      objects,
      split,
      chunksPerGroup: config.CHUNKS_PER_GROUP,
      publish: (groups) =>
        publisher.publish(
          config.TOPIC_CHUNKS_TO_EMBED,
          // Keyed by group: the groups of one document spread over every partition.
          groups.map((group) => ({ key: group.groupId, value: JSON.stringify(group) })),
        ),
    });
    for (const outcome of outcomes) {
      if (outcome.kind === "split") logger.info("split", { jobId: outcome.jobId, chunks: outcome.chunks });
      else logger.info(outcome.kind, { jobId: outcome.jobId, reason: outcome.reason });
    }
  },
});
