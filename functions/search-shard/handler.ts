import { s3Client } from "../../shared/adapters/aws-clients.ts";
import { loadFunctionConfig } from "../../shared/adapters/config.ts";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { SegmentFiles } from "../../shared/adapters/segment-files.ts";
import { SegmentCache, type ShardRequest, type ShardResponse, searchShard } from "../../shared/stages/search.ts";

/**
 * One shard of a large collection's search, invoked by the search function (one invocation per shard, in
 * parallel): retrieval over the segments it is given, with the chunks of the hits it returns. Segments
 * stay open, and cached whole under /tmp, across warm invocations; each shard index has a function of its
 * own, so its warm environments keep holding the same segments.
 */
const config = loadFunctionConfig("search-shard");
const objects = new ObjectStore(s3Client());
const files = new SegmentFiles(objects, config.INDEX_BUCKET, { cacheDir: config.SEGMENT_CACHE_DIR });
const cache = new SegmentCache({
  read: (key) => objects.read(config.INDEX_BUCKET, key),
  source: (key, size) => files.source(key, size),
  prefetch: (key, size) => files.prefetch(key, size),
  retain: (keys) => files.retain(keys),
});

export async function handler(request: ShardRequest): Promise<ShardResponse> {
  return searchShard(request, cache);
}
