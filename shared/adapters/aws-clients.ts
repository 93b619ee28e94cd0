import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/**
 * AWS SDK clients, created once per execution environment. S3_ENDPOINT and DYNAMODB_ENDPOINT
 * point them at the local servers (or anything S3/DynamoDB compatible); unset, they talk to AWS.
 */
let s3: S3Client | undefined;
let dynamo: DynamoDBDocumentClient | undefined;

export function s3Client(): S3Client {
  const endpoint = process.env.S3_ENDPOINT;
  s3 ??= new S3Client(endpoint ? { endpoint, forcePathStyle: true } : {});
  return s3;
}

export function dynamoDocumentClient(): DynamoDBDocumentClient {
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  dynamo ??= DynamoDBDocumentClient.from(new DynamoDBClient(endpoint ? { endpoint } : {}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return dynamo;
}

let lambda: LambdaClient | undefined;

/** Lambda (function-to-function invocations); the SDK's AWS_ENDPOINT_URL_LAMBDA points it at a local runtime. */
export function lambdaClient(): LambdaClient {
  lambda ??= new LambdaClient({});
  return lambda;
}
