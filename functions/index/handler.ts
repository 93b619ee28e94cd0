import { Logger } from "@aws-lambda-powertools/logger";
import type { MSKEvent } from "aws-lambda";
import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { kafkaRecords } from "../../shared/adapters/kafka-records.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { type EmbeddedGroup, embeddedGroup, parseMessage } from "../../shared/domain/messages.ts";
import { indexGroups } from "../../shared/stages/indexing.ts";

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

export async function handler(event: MSKEvent): Promise<void> {
  const groups: EmbeddedGroup[] = [];
  for (const record of kafkaRecords(event)) {
    const parsed = parseMessage(embeddedGroup, record.value);
    if (parsed.success) groups.push(parsed.data);
    else logger.error("malformed chunks.embedded message", { offset: record.offset, issues: parsed.error.issues });
  }
  const started = Date.now();
  try {
    const result = await indexGroups(groups, { jobs, manifests, blobs, maxSegments: config.MAX_SEGMENTS });
    logger.info("indexed", { ...result, groups: groups.length, ms: Date.now() - started });
  } catch (error) {
    await jobs.noteErrors(
      groups.map((group) => group.jobId),
      `index: ${(error as Error).message}`,
    );
    throw error;
  }
}
