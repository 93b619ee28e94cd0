import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  type CORSRule,
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketCorsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { Admin } from "kafkajs";
import type { PhysicalResource, Resource, StackTemplate } from "./template.ts";

/** The local servers a template is provisioned on. */
export interface LocalTargets {
  s3: S3Client;
  dynamodb: DynamoDBClient;
  kafkaAdmin: Admin;
  kafkaBrokers: string;
  region: string;
  accountId: string;
}

/** Lowercase, dash-separated, ≤ 63 characters: a valid bucket name derived from a logical id. */
export const localBucketName = (stack: string, logicalId: string) =>
  `${stack}-${logicalId}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .slice(0, 63)
    .replace(/-$/, "");

/**
 * Names every resource as CloudFormation would (explicit names win, generated ones derive from
 * the logical id, stably across runs) and returns what Ref and Fn::GetAtt yield for it.
 */
export function physicalResource(
  stack: StackTemplate,
  logicalId: string,
  resource: Resource,
  targets: LocalTargets,
): PhysicalResource {
  const { region, accountId } = targets;
  const props = resource.Properties ?? {};
  const explicit = (name: string) => (typeof props[name] === "string" ? (props[name] as string) : undefined);
  switch (resource.Type) {
    case "AWS::S3::Bucket": {
      const name = explicit("BucketName") ?? localBucketName(stack.stackName, logicalId);
      return {
        ref: name,
        attributes: {
          Arn: `arn:aws:s3:::${name}`,
          DomainName: `${name}.s3.amazonaws.com`,
          RegionalDomainName: `${name}.s3.${region}.amazonaws.com`,
        },
      };
    }
    case "AWS::DynamoDB::Table":
    case "AWS::DynamoDB::GlobalTable": {
      const name = explicit("TableName") ?? `${stack.stackName}-${logicalId}`;
      const arn = `arn:aws:dynamodb:${region}:${accountId}:table/${name}`;
      return { ref: name, attributes: { Arn: arn, StreamArn: `${arn}/stream/local` } };
    }
    case "AWS::Lambda::Function": {
      const name = explicit("FunctionName") ?? `${stack.stackName}-${logicalId}`;
      return { ref: name, attributes: { Arn: `arn:aws:lambda:${region}:${accountId}:function:${name}` } };
    }
    case "AWS::MSK::ServerlessCluster":
    case "AWS::MSK::Cluster": {
      const arn = `arn:aws:kafka:${region}:${accountId}:cluster/${explicit("ClusterName") ?? logicalId}/local`;
      return { ref: arn, attributes: { Arn: arn } };
    }
    case "Custom::MskBootstrapBrokers":
      // Whatever the deployed stack asks MSK for, locally it is the local broker.
      return {
        ref: logicalId,
        attributes: new Proxy({} as Record<string, string>, { get: () => targets.kafkaBrokers }),
      };
    case "AWS::ApiGatewayV2::Api":
      return {
        ref: `local-${logicalId}`,
        attributes: { ApiEndpoint: "http://127.0.0.1", ApiId: `local-${logicalId}` },
      };
    default:
      return {
        ref: `local-${logicalId}`,
        attributes: { Arn: `arn:aws:local:${region}:${accountId}:${logicalId}` },
      };
  }
}

/** Creates a bucket if it is missing, with the template's CORS rules. */
export async function provisionBucket(
  targets: LocalTargets,
  name: string,
  properties: Record<string, unknown>,
): Promise<void> {
  try {
    await targets.s3.send(new HeadBucketCommand({ Bucket: name }));
  } catch {
    await targets.s3.send(new CreateBucketCommand({ Bucket: name }));
  }
  const cors = (properties.CorsConfiguration as { CorsRules?: Record<string, unknown>[] } | undefined)?.CorsRules;
  if (cors?.length) {
    const rules: CORSRule[] = cors.map((rule) => ({
      AllowedMethods: rule.AllowedMethods as string[],
      AllowedOrigins: rule.AllowedOrigins as string[],
      AllowedHeaders: rule.AllowedHeaders as string[] | undefined,
      ExposeHeaders: rule.ExposedHeaders as string[] | undefined,
      MaxAgeSeconds: rule.MaxAge as number | undefined,
    }));
    // Not every S3-compatible server implements bucket CORS; the upload path does not depend on it.
    await targets.s3
      .send(new PutBucketCorsCommand({ Bucket: name, CORSConfiguration: { CORSRules: rules } }))
      .catch(() => {});
  }
}

/** Creates a table with the template's keys, indexes and TTL, unless it exists. */
export async function provisionTable(
  targets: LocalTargets,
  name: string,
  properties: Record<string, unknown>,
): Promise<void> {
  const indexes = properties.GlobalSecondaryIndexes as CreateTableCommandInput["GlobalSecondaryIndexes"];
  try {
    const { Table } = await targets.dynamodb.send(new DescribeTableCommand({ TableName: name }));
    // As CloudFormation does on an update: indexes the template added are created (one per call).
    const existing = new Set((Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
    for (const { IndexName, KeySchema, Projection } of indexes ?? []) {
      if (existing.has(IndexName)) continue;
      await targets.dynamodb.send(
        new UpdateTableCommand({
          TableName: name,
          AttributeDefinitions: properties.AttributeDefinitions as CreateTableCommandInput["AttributeDefinitions"],
          GlobalSecondaryIndexUpdates: [{ Create: { IndexName, KeySchema, Projection } }],
        }),
      );
    }
    return;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  await targets.dynamodb.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      KeySchema: properties.KeySchema as CreateTableCommandInput["KeySchema"],
      AttributeDefinitions: properties.AttributeDefinitions as CreateTableCommandInput["AttributeDefinitions"],
      ...(indexes?.length
        ? {
            GlobalSecondaryIndexes: indexes.map(({ IndexName, KeySchema, Projection }) => ({
              IndexName,
              KeySchema,
              Projection,
            })),
          }
        : {}),
    }),
  );
  await waitUntilTableExists({ client: targets.dynamodb, maxWaitTime: 60 }, { TableName: name });
  const ttl = properties.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  if (ttl?.AttributeName && ttl.Enabled) {
    await targets.dynamodb.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
      }),
    );
  }
}

/** Creates the topics a Custom::KafkaTopics resource declares; existing topics keep their partitions. */
export async function provisionTopics(targets: LocalTargets, properties: Record<string, unknown>): Promise<string[]> {
  const declared = (properties.Topics as { Name: string; Partitions: number | string }[] | undefined) ?? [];
  const existing = new Set(await targets.kafkaAdmin.listTopics());
  const missing = declared.filter((topic) => !existing.has(topic.Name));
  if (missing.length > 0) {
    await targets.kafkaAdmin.createTopics({
      waitForLeaders: true,
      topics: missing.map((topic) => ({
        topic: topic.Name,
        numPartitions: Number(topic.Partitions),
        replicationFactor: 1,
      })),
    });
  }
  return declared.map((topic) => topic.Name);
}
