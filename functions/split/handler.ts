import { Logger } from "@aws-lambda-powertools/logger";
import type { MSKEvent } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { kafkaRecords } from "../../shared/adapters/kafka-records.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { documentSplitter } from "../../shared/domain/document-splitter.ts";
import { type ChunkGroup, documentUploaded, parseMessage } from "../../shared/domain/messages.ts";
import { modelPaths } from "../../shared/ml/model-files.ts";
import { EMBEDDER_MAX_TOKENS, embedderTokenCounter, TextTokenizer } from "../../shared/ml/tokenizer.ts";
import { splitDocument } from "../../shared/stages/split.ts";

/** documents.uploaded → extract, chunk, publish groups of chunks to chunks.to-embed (the fan-out). */
const config = loadFunctionConfig("split");
const logger = new Logger({ serviceName: "split" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const objects = new ObjectStore(s3Client());
// Chunks are measured with the embedder's own tokenizer, loaded once per execution environment.
const tokenizer = TextTokenizer.fromFile(modelPaths(config.MODEL_DIR).embedder.tokenizer, EMBEDDER_MAX_TOKENS);
const split = documentSplitter(embedderTokenCounter(tokenizer));
const publisher = publisherFor("split", config);

export async function handler(event: MSKEvent): Promise<void> {
  const groups: ChunkGroup[] = [];
  for (const record of kafkaRecords(event)) {
    const message = parseMessage(documentUploaded, record.value);
    if (!message.success) {
      // Not a message this stage understands: retrying cannot help, so it is logged and skipped.
      logger.error("malformed documents.uploaded message", { offset: record.offset, issues: message.error.issues });
      continue;
    }
    const { jobId } = message.data;
    try {
      const outcome = await splitDocument(message.data, {
        jobs,
        objects,
        split,
        chunksPerGroup: config.CHUNKS_PER_GROUP,
      });
      if (outcome.kind === "split") {
        groups.push(...outcome.groups);
        logger.info("split", { jobId, chunks: outcome.chunks, groups: outcome.groups.length });
      } else {
        logger.info(outcome.kind, { jobId, reason: outcome.reason });
      }
    } catch (error) {
      await jobs.noteError(jobId, `split: ${(error as Error).message}`);
      throw error;
    }
  }
  // One produce for the whole batch, after every job's chunk total was recorded above.
  try {
    await publisher.publish(
      config.TOPIC_CHUNKS_TO_EMBED,
      // Keyed by group: the groups of one document spread over every partition.
      groups.map((group) => ({ key: group.groupId, value: JSON.stringify(group) })),
    );
  } catch (error) {
    await jobs.noteErrors(
      groups.map((group) => group.jobId),
      `split: ${(error as Error).message}`,
    );
    throw error;
  }
}
