import { Logger } from "@aws-lambda-powertools/logger";
import type { MSKEvent } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { kafkaRecords } from "../../shared/adapters/kafka-records.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import {
  type ChunkGroup,
  type EmbeddedGroup,
  indexMessage,
  isReembed,
  parseMessage,
  type ReembedSegment,
} from "../../shared/domain/messages.ts";
import { fanOutReembeds, indexGroups } from "../../shared/stages/indexing.ts";

/** chunks.embedded → immutable segments in the index bucket + manifest; job progress and completion. */
const config = loadFunctionConfig("index");
const logger = new Logger({ serviceName: "index" });
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);
const objects = new ObjectStore(s3Client());
const blobs = {
  write: (key: string, bytes: Uint8Array) => objects.write(config.INDEX_BUCKET, key, bytes),
  read: (key: string) => objects.read(config.INDEX_BUCKET, key),
};
const publisher = publisherFor("index", config);
// Chunks sent (back) to embedding: copies for a collection's second index, migrations' re-embedding.
const toEmbed = (groups: ChunkGroup[]) =>
  publisher.publish(
    config.TOPIC_CHUNKS_TO_EMBED,
    groups.map((group) => ({ key: group.groupId, value: JSON.stringify(group) })),
  );

export async function handler(event: MSKEvent): Promise<void> {
  const groups: EmbeddedGroup[] = [];
  const reembeds: ReembedSegment[] = [];
  for (const record of kafkaRecords(event)) {
    const parsed = parseMessage(indexMessage, record.value);
    if (!parsed.success)
      logger.error("malformed chunks.embedded message", { offset: record.offset, issues: parsed.error.issues });
    else if (isReembed(parsed.data)) reembeds.push(parsed.data);
    else groups.push(parsed.data);
  }
  const started = Date.now();
  try {
    const result = await indexGroups(groups, { jobs, manifests, blobs, toEmbed, maxSegments: config.MAX_SEGMENTS });
    logger.info("indexed", { ...result, groups: groups.length, ms: Date.now() - started });
    if (reembeds.length > 0) {
      const fanOut = await fanOutReembeds(reembeds, { jobs, blobs, toEmbed, chunksPerGroup: config.CHUNKS_PER_GROUP });
      logger.info("re-embedding segments", { ...fanOut, segments: reembeds.length });
    }
  } catch (error) {
    await jobs.noteErrors(
      [...groups, ...reembeds].map((message) => message.jobId),
      `index: ${(error as Error).message}`,
    );
    throw error;
  }
}
