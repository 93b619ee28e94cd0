import { dynamoDocumentClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { JobStore } from "../../shared/adapters/job-store.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { embeddedGroup } from "../../shared/domain/messages.ts";
import { indexGroups } from "../../shared/stages/indexing.ts";
import { kafkaStage } from "../middleware.ts";

/** chunks.embedded → immutable segments in the index bucket + manifest; job progress and completion. */
const config = loadFunctionConfig("index");
const jobs = new JobStore(dynamoDocumentClient(), config.JOBS_TABLE, config.JOB_RETENTION_DAYS);
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);
const objects = new ObjectStore(s3Client());
const blobs = {
  write: (key: string, bytes: Uint8Array) => objects.write(config.INDEX_BUCKET, key, bytes),
  read: (key: string) => objects.read(config.INDEX_BUCKET, key),
};

export const handler = kafkaStage({
  serviceName: "index",
  message: embeddedGroup,
  jobs,
  async run(groups, logger) {
    const result = await indexGroups(groups, { jobs, manifests, blobs, maxSegments: config.MAX_SEGMENTS });
    logger.info("indexed", { ...result, groups: groups.length });
  },
});
