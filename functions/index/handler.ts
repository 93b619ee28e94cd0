import { Logger } from "@aws-lambda-powertools/logger";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { dynamoDocumentClient, lambdaClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { DEFAULT_COMPACTION_POLICY } from "../../shared/domain/compaction-policy.ts";
import {
  type ChunkGroup,
  type EmbeddedGroup,
  indexMessage,
  isReembed,
  type ReembedSegment,
} from "../../shared/domain/messages.ts";
import { timeToSearchableMs } from "../../shared/domain/metric-catalog.ts";
import { fanOutReembeds, indexGroups } from "../../shared/stages/indexing.ts";
import { kafkaStage } from "../middleware.ts";

/** chunks.embedded → immutable segments in the index bucket + manifest; job progress and completion. */
const config = loadFunctionConfig("index");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);
const objects = new ObjectStore(s3Client());
const blobs = {
  write: (key: string, body: Uint8Array | readonly Uint8Array[]) => objects.write(config.INDEX_BUCKET, key, body),
  read: (key: string) => objects.read(config.INDEX_BUCKET, key),
};
const publisher = publisherFor("index", config);
// Chunks sent (back) to embedding: copies for a collection's second index, migrations' re-embedding.
const toEmbed = (groups: ChunkGroup[]) =>
  publisher.publish(
    config.TOPIC_CHUNKS_TO_EMBED,
    groups.map((group) => ({ key: group.groupId, value: JSON.stringify(group) })),
  );
const compactionLog = new Logger({ serviceName: "index" });
/** Compaction runs in its own function, invoked asynchronously: it never holds up or fails a batch. */
const compaction = config.COMPACT_FUNCTION
  ? {
      policy: { ...DEFAULT_COMPACTION_POLICY, factor: config.MERGE_FACTOR, maxChunks: config.MAX_SEGMENT_CHUNKS },
      request: async (tenant: string, collection: string) => {
        await lambdaClient().send(
          new InvokeCommand({
            FunctionName: config.COMPACT_FUNCTION,
            InvocationType: "Event",
            Payload: new TextEncoder().encode(JSON.stringify({ tenant, collection })),
          }),
        );
      },
      onError: (error: unknown) => compactionLog.warn("could not request compaction", { error: error as Error }),
    }
  : undefined;

export const handler = kafkaStage({
  serviceName: "index",
  // Embedded chunks, and requests of a migration to re-embed one segment of the source index.
  message: indexMessage,
  jobs,
  async run(messages, logger, metrics) {
    const started = Date.now();
    const groups: EmbeddedGroup[] = [];
    const reembeds: ReembedSegment[] = [];
    for (const message of messages) {
      if (isReembed(message)) reembeds.push(message);
      else groups.push(message);
    }
    const { completed, ...result } = await indexGroups(groups, {
      jobs,
      manifests,
      blobs,
      toEmbed,
      ...(compaction ? { compaction } : {}),
    });
    const now = new Date();
    metrics.add("ChunksIndexed", result.indexed);
    if (completed.length > 0) metrics.add("DocumentsCompleted", completed.length);
    for (const job of completed) {
      metrics.add("TimeToSearchable", timeToSearchableMs(job, now));
      logger.info("job completed", {
        jobId: job.jobId,
        documentId: job.documentId,
        tenant: job.tenant,
        chunks: job.chunksTotal,
        timeToSearchableMs: timeToSearchableMs(job, now),
      });
    }
    logger.info("indexed", {
      ...result,
      completed: completed.length,
      groups: groups.length,
      ms: Date.now() - started,
    });
    if (reembeds.length > 0) {
      const fanOut = await fanOutReembeds(reembeds, { jobs, blobs, toEmbed, chunksPerGroup: config.CHUNKS_PER_GROUP });
      logger.info("re-embedding segments", { ...fanOut, segments: reembeds.length });
    }
  },
});
