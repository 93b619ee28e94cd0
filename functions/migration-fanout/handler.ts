import { Logger } from "@aws-lambda-powertools/logger";
import { z } from "zod";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { publisherFor } from "../../shared/adapters/kafka-publisher.ts";
import { collectionKey, reembedSegment } from "../../shared/domain/messages.ts";

/**
 * Invoked by the collections API when a migration starts: sends its re-embed requests (one per
 * segment of the index migrated from) to chunks.embedded, keyed by the collection like its
 * uploads' groups, so the index stage (the collection's one writer) handles them in order. This
 * function is in the VPC to reach Kafka; the collections API is not, so it can reach the token
 * issuer's keys.
 */
const config = loadFunctionConfig("migration-fanout");
const logger = new Logger({ serviceName: "migration-fanout" });
const publisher = publisherFor("migration-fanout", config);

// The collections API sends at most 1,000 requests per invocation.
const fanOutRequest = z.strictObject({ requests: z.array(reembedSegment).min(1).max(1000) });

export const handler = async (event: unknown): Promise<{ published: number }> => {
  const { requests } = fanOutRequest.parse(event);
  await publisher.publish(
    config.TOPIC_CHUNKS_EMBEDDED,
    requests.map((request) => ({
      key: collectionKey(request.tenant, request.collection),
      value: JSON.stringify(request),
    })),
  );
  logger.info("re-embed requests published", { migration: requests[0]?.jobId, count: requests.length });
  return { published: requests.length };
};
