import type { MSKEvent } from "aws-lambda";

/** One record of a Lambda Kafka event, decoded. */
export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | undefined;
  value: string;
}

/** Decodes an MSK event's records (grouped by topic-partition, base64) in partition order. */
export function kafkaRecords(event: MSKEvent): KafkaRecord[] {
  return Object.values(event.records)
    .flat()
    .map((record) => ({
      topic: record.topic,
      partition: record.partition,
      offset: Number(record.offset),
      key: record.key ? Buffer.from(record.key, "base64").toString("utf8") : undefined,
      value: Buffer.from(record.value, "base64").toString("utf8"),
    }));
}
