import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { createJobsTable as createTable } from "../localstack/platform/jobs-table.ts";
import { s3Client } from "../shared/adapters/aws-clients.ts";

/** A fresh jobs table and index bucket per evaluation run, on the stack the environment names. */
export async function createJobsTable(name: string): Promise<string> {
  await createTable(new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT }), name);
  return name;
}

export async function createBucket(name: string): Promise<string> {
  await s3Client().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
