import {
  CreateTableCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { JOBS_TABLE } from "../../shared/adapters/jobs-table.ts";

/**
 * Creates a table shaped like the template's jobs table (the one definition in
 * shared/adapters/jobs-table.ts: keys, the tenant and upload-check indexes, TTL), for tests and the evaluation,
 * which run the stores without the whole template.
 */
export async function createJobsTable(client: DynamoDBClient, name: string): Promise<() => Promise<void>> {
  const { partitionKey, sortKey, tenantJobsIndex, uploadChecksIndex, timeToLiveAttribute } = JOBS_TABLE;
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        partitionKey,
        sortKey,
        tenantJobsIndex.partitionKey,
        tenantJobsIndex.sortKey,
        uploadChecksIndex.partitionKey,
        uploadChecksIndex.sortKey,
      ].map((AttributeName) => ({ AttributeName, AttributeType: "S" })),
      KeySchema: [
        { AttributeName: partitionKey, KeyType: "HASH" },
        { AttributeName: sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: tenantJobsIndex.indexName,
          KeySchema: [
            { AttributeName: tenantJobsIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: tenantJobsIndex.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
        {
          IndexName: uploadChecksIndex.indexName,
          KeySchema: [
            { AttributeName: uploadChecksIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: uploadChecksIndex.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "KEYS_ONLY" },
        },
      ],
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: name });
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: timeToLiveAttribute, Enabled: true },
    }),
  );
  return async () => {
    await client.send(new DeleteTableCommand({ TableName: name }));
  };
}
