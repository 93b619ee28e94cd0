import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { Kafka, logLevel } from "kafkajs";

/** Clients for the stack the global setup started (endpoints come from the environment). */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through vitest's global setup (npm test)`);
  return value;
}

export const kafkaClient = (clientId = "datadistiller-test") =>
  new Kafka({ clientId, brokers: requireEnv("KAFKA_BROKERS").split(","), logLevel: logLevel.WARN });

export const dynamoClient = () => new DynamoDBClient({ endpoint: requireEnv("DYNAMODB_ENDPOINT") });

export const s3Client = () => new S3Client({ endpoint: requireEnv("S3_ENDPOINT"), forcePathStyle: true });

/** A name no other test run uses, so runs against a reused stack never collide. */
export const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
