import type { Admin } from "kafkajs";

/** How far one consumer group is behind on one partition. */
export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  /** The group's committed offset (the next record it will read); -1 before its first commit. */
  committed: number;
  /** The partition's end offset (the offset the next record produced will get). */
  end: number;
  /** Records not yet consumed: end − committed (end − start before the first commit when reading from the start). */
  lag: number;
}

/**
 * Consumer lag as Lambda reports OffsetLag for a Kafka event source, per partition: the end
 * offsets of the topics against the group's committed offsets (two admin requests per topic).
 */
export async function consumerLag(
  admin: Pick<Admin, "fetchTopicOffsets" | "fetchOffsets">,
  group: string,
  topics: readonly string[],
  fromBeginning: boolean,
): Promise<PartitionLag[]> {
  const lags: PartitionLag[] = [];
  for (const topic of topics) {
    const [ends, [committedOffsets]] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: group, topics: [topic] }),
    ]);
    const committedBy = new Map(
      (committedOffsets?.partitions ?? []).map(({ partition, offset }) => [partition, Number(offset)]),
    );
    for (const { partition, high, low } of ends) {
      const end = Number(high);
      const committed = committedBy.get(partition) ?? -1;
      const consumedFrom = committed >= 0 ? committed : fromBeginning ? Number(low) : end;
      lags.push({ group, topic, partition, committed, end, lag: Math.max(0, end - consumedFrom) });
    }
  }
  return lags.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}
