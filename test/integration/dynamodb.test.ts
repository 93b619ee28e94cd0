import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteTableCommand,
  GetItemCommand,
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient, uniqueName } from "../support/clients.ts";

const client = dynamoClient();
const table = uniqueName("test-jobs");

beforeAll(async () => {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: table });
});

afterAll(async () => {
  await client.send(new DeleteTableCommand({ TableName: table }));
  client.destroy();
});

/** Records one processed batch: a marker that may exist only once, and the counter it adds to. */
const recordBatch = (jobId: string, batchId: string, chunks: number) =>
  new TransactWriteItemsCommand({
    TransactItems: [
      {
        Put: {
          TableName: table,
          Item: { pk: { S: `JOB#${jobId}` }, sk: { S: `BATCH#${batchId}` } },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
      {
        Update: {
          TableName: table,
          Key: { pk: { S: `JOB#${jobId}` }, sk: { S: "JOB" } },
          UpdateExpression: "ADD chunksIndexed :n",
          ExpressionAttributeValues: { ":n": { N: String(chunks) } },
        },
      },
    ],
  });

async function chunksIndexed(jobId: string): Promise<number> {
  const { Item } = await client.send(
    new GetItemCommand({
      TableName: table,
      Key: { pk: { S: `JOB#${jobId}` }, sk: { S: "JOB" } },
      ConsistentRead: true,
    }),
  );
  return Number(Item?.chunksIndexed?.N ?? 0);
}

describe("DynamoDB Local", () => {
  it("rejects a conditional put of an item that already exists", async () => {
    const put = () =>
      client.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: "JOB#dup" }, sk: { S: "JOB" }, state: { S: "PENDING_UPLOAD" } },
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
    await put();
    await expect(put()).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  });

  it("applies a marker and a counter in one transaction, and a replay adds nothing", async () => {
    await client.send(recordBatch("job-1", "topic-0-10-19", 10));
    await client.send(recordBatch("job-1", "topic-1-0-4", 5));
    expect(await chunksIndexed("job-1")).toBe(15);

    const replay = client.send(recordBatch("job-1", "topic-0-10-19", 10));
    await expect(replay).rejects.toBeInstanceOf(TransactionCanceledException);
    await replay.catch((error: TransactionCanceledException) => {
      expect(error.CancellationReasons?.map((reason) => reason.Code)).toEqual(["ConditionalCheckFailed", "None"]);
    });
    expect(await chunksIndexed("job-1")).toBe(15);
  });
});
