import { Logger } from "@aws-lambda-powertools/logger";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import type { Context } from "aws-lambda";
import { z } from "zod";
import { dynamoDocumentClient, lambdaClient, s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { ManifestStore } from "../../shared/adapters/manifest-store.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { SegmentFiles } from "../../shared/adapters/segment-files.ts";
import { DEFAULT_COMPACTION_POLICY } from "../../shared/domain/compaction-policy.ts";
import { compactCollection } from "../../shared/stages/compaction.ts";

/**
 * Compacts one collection ({tenant, collection}), invoked asynchronously by the index function after a
 * batch: merges neighbouring segments tier by tier until the collection is compact, then returns; with
 * merges left when time runs short, it invokes itself again. Its failures never touch ingestion (Lambda
 * retries an asynchronous invocation twice; the next batch asks again).
 */
const config = loadFunctionConfig("compact");
const logger = new Logger({ serviceName: "compact" });
const manifests = new ManifestStore(dynamoDocumentClient(), config.JOBS_TABLE);
const objects = new ObjectStore(s3Client());
const files = new SegmentFiles(objects, config.INDEX_BUCKET);
const event = z.object({ tenant: z.string().min(1), collection: z.string().min(1) });

export async function handler(
  input: unknown,
  context: Context,
): Promise<{ merges: number; busy: boolean; moreWork: boolean }> {
  const { tenant, collection } = event.parse(input);
  const result = await compactCollection(tenant, collection, context.awsRequestId, {
    manifests,
    blobs: {
      write: (key, body) => objects.write(config.INDEX_BUCKET, key, body),
      read: (key) => objects.read(config.INDEX_BUCKET, key),
      source: (key, size) => files.source(key, size),
      delete: (key) => objects.delete(config.INDEX_BUCKET, key),
    },
    policy: { ...DEFAULT_COMPACTION_POLICY, factor: config.MERGE_FACTOR, maxChunks: config.MAX_SEGMENT_CHUNKS },
    annMinChunks: config.ANN_MIN_CHUNKS,
    remainingMs: () => context.getRemainingTimeInMillis(),
    log: (message, details) => logger.info(message, details),
  });
  logger.info("compaction done", { tenant, collection, ...result });
  if (result.moreWork) {
    await lambdaClient().send(
      new InvokeCommand({
        FunctionName: context.functionName,
        InvocationType: "Event",
        Payload: new TextEncoder().encode(JSON.stringify({ tenant, collection })),
      }),
    );
  }
  return result;
}
