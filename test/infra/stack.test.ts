import { tmpdir } from "node:os";
import { join } from "node:path";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp, cdkJsonContext } from "../../infra/app.ts";
import { KAFKA_CONSUMERS } from "../../infra/kafka-consumer.ts";
import { SINGLE_FUNCTION_NAMES } from "../../shared/adapters/config.ts";
import { paths } from "../../shared/api/openapi.ts";

// ---- Synthesis (once per variant: NodejsFunction bundling runs esbuild for every function) ------

/** A synthesized CloudFormation value: the assertions below navigate it freely. */
// biome-ignore lint/suspicious/noExplicitAny: template JSON is untyped by nature
type Json = any;

interface TemplateJson {
  Resources: Record<
    string,
    { Type: string; Properties?: Record<string, Json>; Metadata?: Record<string, Json>; DependsOn?: string[] }
  >;
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
}

/**
 * Synthesizes the app with the repo's cdk.json context plus overrides. `bundle: false` skips the
 * esbuild bundling (NodejsFunction then uses a dummy asset): for variants whose code is unchanged.
 */
function synthesize(context: Record<string, unknown> = {}, options: { bundle?: boolean } = {}) {
  const built = buildApp({
    // Hermetic: the placeholder layer, even where `npm run build:layer` has run.
    layerDirectory: join(tmpdir(), "datadistiller-no-layer"),
    context: {
      ...cdkJsonContext(),
      ...(options.bundle === false ? { "aws:cdk:bundling-stacks": [] } : {}),
      ...context,
    },
  });
  const template = Template.fromStack(built.stack);
  return { ...built, template, json: template.toJSON() as TemplateJson };
}

const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];
const resourcesOf = (statement: Statement): unknown[] =>
  Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];

function logicalIds(json: TemplateJson, type: string, prefix = ""): string[] {
  return Object.entries(json.Resources)
    .filter(([id, resource]) => resource.Type === type && id.startsWith(prefix))
    .map(([id]) => id);
}

function logicalId(json: TemplateJson, type: string, prefix: string): string {
  const ids = logicalIds(json, type, prefix);
  if (ids.length !== 1)
    throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(", ") || "none"}`);
  return ids[0] as string;
}

/** The function whose template metadata names the given service ("search", …). */
function functionId(json: TemplateJson, service: string): string {
  const ids = Object.entries(json.Resources)
    .filter(
      ([, resource]) =>
        resource.Type === "AWS::Lambda::Function" && resource.Metadata?.DataDistiller?.service === service,
    )
    .map(([id]) => id);
  if (ids.length !== 1) throw new Error(`expected one function for ${service}, found ${ids.length}`);
  return ids[0] as string;
}

/** Every IAM statement of a function's execution role (which must have no managed policies). */
function statementsOf(json: TemplateJson, fnId: string): Statement[] {
  const role = json.Resources[fnId]?.Properties?.Role as { "Fn::GetAtt": [string, string] } | undefined;
  if (!role) throw new Error(`${fnId} has no role`);
  const roleId = role["Fn::GetAtt"][0];
  expect(json.Resources[roleId]?.Properties?.ManagedPolicyArns ?? []).toEqual([]);
  return Object.values(json.Resources)
    .filter(
      (resource) =>
        resource.Type === "AWS::IAM::Policy" &&
        ((resource.Properties?.Roles ?? []) as unknown[]).some(
          (ref) => JSON.stringify(ref) === JSON.stringify({ Ref: roleId }),
        ),
    )
    .flatMap((policy) => policy.Properties?.PolicyDocument.Statement as Statement[]);
}

/** Actions granted on resources whose rendering mentions `needle` (a logical id, a key prefix…). */
function actionsOn(statements: Statement[], needle: string): string[] {
  return statements
    .filter(
      (statement) =>
        statement.Effect === "Allow" && resourcesOf(statement).some((r) => JSON.stringify(r).includes(needle)),
    )
    .flatMap(actionsOf)
    .sort();
}

const allActions = (statements: Statement[]) => [...new Set(statements.flatMap(actionsOf))].sort();

let synth: ReturnType<typeof synthesize>;
let json: TemplateJson;
let ids: { uploads: string; index: string; deadLetters: string; table: string; cluster: string };

beforeAll(() => {
  synth = synthesize();
  json = synth.json;
  ids = {
    uploads: logicalId(json, "AWS::S3::Bucket", "StorageUploads"),
    index: logicalId(json, "AWS::S3::Bucket", "StorageIndex"),
    deadLetters: logicalId(json, "AWS::S3::Bucket", "StorageDeadLetters"),
    table: logicalId(json, "AWS::DynamoDB::Table", "StorageJobs"),
    cluster: logicalId(json, "AWS::MSK::ServerlessCluster", "StreamingCluster"),
  };
});

// ---- Kafka event source mappings -----------------------------------------------------------------

describe("Kafka event source mappings", () => {
  it("one per consumer, on its topic, with its consumer group, from TRIM_HORIZON", () => {
    const mappings = logicalIds(json, "AWS::Lambda::EventSourceMapping").map((id) => json.Resources[id]?.Properties);
    const expected = { split: "documents.uploaded", embed: "chunks.to-embed", index: "chunks.embedded" };
    expect(mappings).toHaveLength(KAFKA_CONSUMERS.length);
    for (const fn of KAFKA_CONSUMERS) {
      const mapping = mappings.find(
        (m) => m?.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId === `datadistiller-${fn}`,
      );
      expect(mapping, fn).toBeDefined();
      expect(mapping?.Topics).toEqual([expected[fn]]);
      expect(mapping?.StartingPosition).toBe("TRIM_HORIZON");
      expect(mapping?.EventSourceArn).toEqual({ "Fn::GetAtt": [ids.cluster, "Arn"] });
      expect(mapping?.FunctionName).toEqual({ Ref: functionId(json, fn) });
      expect(mapping?.BatchSize).toBeGreaterThan(0);
      expect(mapping?.MaximumBatchingWindowInSeconds).toBeGreaterThan(0);
    }
  });

  it("every mapping sends exhausted batches to the S3 dead-letter bucket after bounded retries", () => {
    for (const id of logicalIds(json, "AWS::Lambda::EventSourceMapping")) {
      const mapping = json.Resources[id]?.Properties ?? {};
      expect(mapping.DestinationConfig, id).toEqual({
        OnFailure: { Destination: { "Fn::GetAtt": [ids.deadLetters, "Arn"] } },
      });
      expect(mapping.MaximumRetryAttempts, id).toBeGreaterThanOrEqual(0);
      expect(mapping.MaximumRetryAttempts, id).toBeLessThanOrEqual(10);
      // The error-handling controls of Kafka mappings live in provisioned poller mode.
      expect(mapping.ProvisionedPollerConfig?.MinimumPollers, id).toBeGreaterThanOrEqual(1);
    }
  });

  it("bisects poison batches in split and embed, not in index (one batch = one segment)", () => {
    const byGroup = (fn: string) =>
      logicalIds(json, "AWS::Lambda::EventSourceMapping")
        .map((id) => json.Resources[id]?.Properties)
        .find((m) => m?.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId === `datadistiller-${fn}`);
    expect(byGroup("split")?.BisectBatchOnFunctionError).toBe(true);
    expect(byGroup("embed")?.BisectBatchOnFunctionError).toBe(true);
    expect(byGroup("index")?.BisectBatchOnFunctionError).toBe(false);
  });

  it("each mapping waits for the topics and its role's permissions", () => {
    const topics = logicalId(json, "Custom::KafkaTopics", "StreamingTopics");
    for (const id of logicalIds(json, "AWS::Lambda::EventSourceMapping")) {
      expect(json.Resources[id]?.DependsOn).toEqual(
        expect.arrayContaining([topics, expect.stringMatching(/RoleDefaultPolicy/)]),
      );
    }
  });

  it("the topics custom resource declares every topic with its partition count", () => {
    synth.template.hasResourceProperties("Custom::KafkaTopics", {
      Topics: [
        { Name: "documents.uploaded", Partitions: 6 },
        { Name: "chunks.to-embed", Partitions: 12 },
        { Name: "chunks.embedded", Partitions: 6 },
      ],
      BootstrapBrokers: {
        "Fn::GetAtt": [Match.stringLikeRegexp("^StreamingBootstrapBrokers"), "BootstrapBrokerStringSaslIam"],
      },
    });
  });

  it("the MSK Serverless cluster uses IAM authentication in the private subnets", () => {
    synth.template.hasResourceProperties("AWS::MSK::ServerlessCluster", {
      ClientAuthentication: { Sasl: { Iam: { Enabled: true } } },
      VpcConfigs: [{ SubnetIds: Match.arrayWith([{ Ref: Match.stringLikeRegexp("privateSubnet") }]) }],
    });
  });

  it("the VPC has S3 and DynamoDB gateway endpoints (S3 is required by the S3 on-failure destination)", () => {
    const services = logicalIds(json, "AWS::EC2::VPCEndpoint").map((id) =>
      JSON.stringify(json.Resources[id]?.Properties?.ServiceName),
    );
    expect(services.some((s) => s.includes(".s3"))).toBe(true);
    expect(services.some((s) => s.includes(".dynamodb"))).toBe(true);
  });
});

// ---- Storage -----------------------------------------------------------------------------------------

describe("buckets", () => {
  it("every bucket blocks public access and is encrypted", () => {
    const buckets = logicalIds(json, "AWS::S3::Bucket");
    expect(buckets.length).toBeGreaterThanOrEqual(4);
    for (const id of buckets) {
      const properties = json.Resources[id]?.Properties ?? {};
      expect(properties.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(
        properties.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault
          ?.SSEAlgorithm,
        id,
      ).toBe("AES256");
    }
  });

  it("every bucket denies requests without TLS", () => {
    for (const id of logicalIds(json, "AWS::S3::Bucket")) {
      const policy = Object.values(json.Resources).find(
        (r) =>
          r.Type === "AWS::S3::BucketPolicy" && JSON.stringify(r.Properties?.Bucket) === JSON.stringify({ Ref: id }),
      );
      const statements = (policy?.Properties?.PolicyDocument.Statement ?? []) as Statement[];
      expect(
        statements.some(
          (s) =>
            s.Effect === "Deny" &&
            JSON.stringify(s.Condition) === JSON.stringify({ Bool: { "aws:SecureTransport": "false" } }),
        ),
        id,
      ).toBe(true);
    }
  });

  it("the upload bucket allows browser PUT/POST and cleans up abandoned and old uploads", () => {
    const upload = json.Resources[ids.uploads]?.Properties ?? {};
    expect(upload.CorsConfiguration.CorsRules[0].AllowedMethods.sort()).toEqual(["POST", "PUT"]);
    const rules = upload.LifecycleConfiguration.Rules as Record<string, Json>[];
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: "Enabled" }),
        expect.objectContaining({ Prefix: "uploads/", ExpirationInDays: 30, Status: "Enabled" }),
      ]),
    );
  });

  it("S3 ObjectCreated under uploads/ invokes on-upload", () => {
    synth.template.hasResourceProperties("Custom::S3BucketNotifications", {
      BucketName: { Ref: ids.uploads },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Events: ["s3:ObjectCreated:*"],
            Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "uploads/" }] } },
            LambdaFunctionArn: { "Fn::GetAtt": [functionId(json, "on-upload"), "Arn"] },
          },
        ],
      },
    });
  });

  it("S3 ObjectCreated under aws/lambda/ on the dead-letter bucket invokes dead-letter", () => {
    synth.template.hasResourceProperties("Custom::S3BucketNotifications", {
      BucketName: { Ref: ids.deadLetters },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Events: ["s3:ObjectCreated:*"],
            Filter: { Key: { FilterRules: [{ Name: "prefix", Value: "aws/lambda/" }] } },
            LambdaFunctionArn: { "Fn::GetAtt": [functionId(json, "dead-letter"), "Arn"] },
          },
        ],
      },
    });
    synth.template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      FunctionName: { "Fn::GetAtt": [functionId(json, "dead-letter"), "Arn"] },
      Principal: "s3.amazonaws.com",
      SourceArn: { "Fn::GetAtt": [ids.deadLetters, "Arn"] },
    });
  });

  it("the jobs table: pk/sk, gsi1 (tenant listings), gsi2 (upload checks, keys only), on-demand, PITR, TTL on expiresAt", () => {
    synth.template.hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: "gsi1",
          KeySchema: [
            { AttributeName: "gsi1pk", KeyType: "HASH" },
            { AttributeName: "gsi1sk", KeyType: "RANGE" },
          ],
        }),
        {
          IndexName: "gsi2",
          KeySchema: [
            { AttributeName: "gsi2pk", KeyType: "HASH" },
            { AttributeName: "gsi2sk", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "KEYS_ONLY" },
        },
      ],
    });
  });
});

// ---- Compaction and search shards ---------------------------------------------------------------------

describe("compaction and search shards", () => {
  const byService = (service: string) =>
    Object.entries(json.Resources)
      .filter(([, r]) => r.Type === "AWS::Lambda::Function" && r.Metadata?.DataDistiller?.service === service)
      .map(([id]) => id);
  const variables = (id: string) => json.Resources[id]?.Properties?.Environment.Variables as Record<string, Json>;

  it("the index function hands collections to a compaction function it may invoke, and nothing more", () => {
    const [compact] = byService("compact");
    const index = functionId(json, "index");
    expect(variables(index).COMPACT_FUNCTION).toEqual({ Ref: compact });
    expect(variables(index)).toMatchObject({ MERGE_FACTOR: "4", MAX_SEGMENT_CHUNKS: "262144" });
    expect(actionsOn(statementsOf(json, index), compact as string)).toEqual(["lambda:InvokeFunction"]);
    const compactEnv = variables(compact as string);
    expect(compactEnv).toMatchObject({ MERGE_FACTOR: "4", MAX_SEGMENT_CHUNKS: "262144", ANN_MIN_CHUNKS: "4096" });
    expect(compactEnv.INDEX_BUCKET).toEqual({ Ref: ids.index });
    const properties = json.Resources[compact as string]?.Properties ?? {};
    expect(properties.MemorySize).toBe(2048);
    expect(properties.Timeout).toBe(900);
    const statements = statementsOf(json, compact as string);
    expect(actionsOn(statements, ids.index)).toEqual(["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]);
    expect(JSON.stringify(statements.find((st) => st.Sid === "Segments")?.Resource)).toContain("/index/*");
    expect(actionsOn(statements, ids.table)).toEqual([
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      // Query: the collection's indexes, each compacted on its own.
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]);
    // It continues a long compaction by invoking itself.
    expect(actionsOn(statements, compact as string)).toEqual(["lambda:InvokeFunction"]);
    // Not a Kafka consumer: no event source mapping targets it.
    for (const mapping of logicalIds(json, "AWS::Lambda::EventSourceMapping")) {
      expect(JSON.stringify(json.Resources[mapping]?.Properties?.FunctionName)).not.toContain(compact);
    }
  });

  it("search fans large collections out to shard functions that only read segments", () => {
    const shards = byService("search-shard");
    expect(shards).toHaveLength(10);
    const search = functionId(json, "search");
    const names = variables(search).SEARCH_SHARD_FUNCTIONS as Json;
    expect(JSON.stringify(names)).toContain(shards[0]);
    expect(variables(search).SHARD_MAX_CHUNKS).toBe("1000000");
    const invoke = statementsOf(json, search).find((st) => st.Sid === "InvokeSearchShards");
    expect(actionsOf(invoke as Statement)).toEqual(["lambda:InvokeFunction"]);
    expect(resourcesOf(invoke as Statement)).toHaveLength(10);
    for (const shard of shards) {
      const statements = statementsOf(json, shard);
      expect(allActions(statements).filter((a) => !a.startsWith("logs:"))).toEqual(["s3:GetObject"]);
      expect(Object.keys(variables(shard)).sort()).toEqual(
        [
          "STAGE",
          "POWERTOOLS_SERVICE_NAME",
          "POWERTOOLS_METRICS_NAMESPACE",
          "NODE_OPTIONS",
          "INDEX_BUCKET",
          "SEGMENT_CACHE_DIR",
        ].sort(),
      );
      expect(variables(shard).INDEX_BUCKET).toEqual({ Ref: ids.index });
      expect(json.Resources[shard]?.Properties?.EphemeralStorage).toEqual({ Size: 10240 });
    }
    expect(json.Resources[search]?.Properties?.EphemeralStorage).toEqual({ Size: 10240 });
  });

  it("the shard functions and merge bounds come from the configuration", () => {
    const variant = synthesize(
      { searchShardFunctions: 0, maxSegmentChunks: 65536, mergeFactor: 8 },
      { bundle: false },
    ).json;
    const fns = Object.entries(variant.Resources).filter(([, r]) => r.Type === "AWS::Lambda::Function");
    expect(fns.filter(([, r]) => r.Metadata?.DataDistiller?.service === "search-shard")).toHaveLength(0);
    const env = (service: string) =>
      fns.find(([, r]) => r.Metadata?.DataDistiller?.service === service)?.[1].Properties?.Environment.Variables;
    expect(env("search").SEARCH_SHARD_FUNCTIONS).toBeUndefined();
    expect(env("compact")).toMatchObject({ MAX_SEGMENT_CHUNKS: "65536", MERGE_FACTOR: "8" });
    expect(env("index")).toMatchObject({ MAX_SEGMENT_CHUNKS: "65536", MERGE_FACTOR: "8" });
  });
});

// ---- Functions: configuration and least privilege ------------------------------------------------------

describe("functions", () => {
  // The exact variables each handler reads with loadConfig (AWS_REGION comes from the runtime).
  // The API's functions verify bearer tokens themselves.
  const AUTH = ["TENANT_CLAIM", "JWT_ISSUER", "JWT_AUDIENCE"];
  const ENV: Record<string, string[]> = {
    sweeper: [
      "JOBS_TABLE",
      "UPLOAD_BUCKET",
      "DEAD_LETTER_BUCKET",
      "MAX_UPLOAD_BYTES",
      "KAFKA_BROKERS",
      "KAFKA_SASL_MECHANISM",
      "TOPIC_DOCUMENTS_UPLOADED",
      "JOB_RETENTION_DAYS",
    ],
    "upload-url": [
      "JOBS_TABLE",
      "UPLOAD_BUCKET",
      "ALLOWED_CONTENT_TYPES",
      "MAX_UPLOAD_BYTES",
      "UPLOAD_METHOD",
      "UPLOAD_URL_TTL_SECONDS",
      ...AUTH,
      "JOB_RETENTION_DAYS",
    ],
    "on-upload": [
      "JOBS_TABLE",
      "MAX_UPLOAD_BYTES",
      "KAFKA_BROKERS",
      "KAFKA_SASL_MECHANISM",
      "TOPIC_DOCUMENTS_UPLOADED",
      "JOB_RETENTION_DAYS",
    ],
    split: [
      "JOBS_TABLE",
      "KAFKA_BROKERS",
      "KAFKA_SASL_MECHANISM",
      "TOPIC_CHUNKS_TO_EMBED",
      "CHUNKS_PER_GROUP",
      "EMBEDDING_MODEL",
      "MODEL_DIR",
      "JOB_RETENTION_DAYS",
    ],
    embed: [
      "JOBS_TABLE",
      "KAFKA_BROKERS",
      "KAFKA_SASL_MECHANISM",
      "TOPIC_CHUNKS_EMBEDDED",
      "EMBEDDING_MODEL",
      "EMBEDDING_MODELS",
      "MODEL_DIR",
      "JOB_RETENTION_DAYS",
    ],
    // index sends chunks back to embedding: for a collection's other index, and a migration's.
    index: [
      "JOBS_TABLE",
      "INDEX_BUCKET",
      "JOB_RETENTION_DAYS",
      "KAFKA_BROKERS",
      "KAFKA_SASL_MECHANISM",
      "TOPIC_CHUNKS_TO_EMBED",
      "CHUNKS_PER_GROUP",
      "COMPACT_FUNCTION",
      "MERGE_FACTOR",
      "MAX_SEGMENT_CHUNKS",
    ],
    compact: ["JOBS_TABLE", "INDEX_BUCKET", "MERGE_FACTOR", "MAX_SEGMENT_CHUNKS", "ANN_MIN_CHUNKS"],
    search: [
      "JOBS_TABLE",
      "INDEX_BUCKET",
      ...AUTH,
      "EMBEDDING_MODEL",
      "EMBEDDING_MODELS",
      "MODEL_DIR",
      "SEGMENT_CACHE_DIR",
      "SEARCH_SHARD_FUNCTIONS",
      "SHARD_MAX_CHUNKS",
    ],
    collections: [
      "JOBS_TABLE",
      "INDEX_BUCKET",
      ...AUTH,
      "MIGRATION_FANOUT_FUNCTION",
      "EMBEDDING_MODEL",
      "EMBEDDING_MODELS",
      "MODEL_DIR",
      "JOB_RETENTION_DAYS",
    ],
    "migration-fanout": ["KAFKA_BROKERS", "KAFKA_SASL_MECHANISM", "TOPIC_CHUNKS_EMBEDDED"],
    "job-status": ["JOBS_TABLE", ...AUTH, "STALL_AFTER_MINUTES"],
    "delete-document": ["JOBS_TABLE", ...AUTH],
    "dead-letter": ["JOBS_TABLE", "DEAD_LETTER_BUCKET", "JOB_RETENTION_DAYS"],
    redrive: [
      "JOBS_TABLE",
      "DEAD_LETTER_BUCKET",
      "KAFKA_BROKERS",
      "KAFKA_SASL_MECHANISM",
      "TOPIC_DOCUMENTS_UPLOADED",
      "TOPIC_CHUNKS_TO_EMBED",
      "TOPIC_CHUNKS_EMBEDDED",
      "JOB_RETENTION_DAYS",
    ],
    "dead-letter-api": ["DEAD_LETTER_BUCKET", "REDRIVE_FUNCTION", ...AUTH],
  };
  const COMMON = ["STAGE", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "NODE_OPTIONS"];

  it("each function gets exactly its environment, with Refs to the resources it names", () => {
    for (const name of SINGLE_FUNCTION_NAMES) {
      const variables = json.Resources[functionId(json, name)]?.Properties?.Environment.Variables as Record<
        string,
        unknown
      >;
      expect(Object.keys(variables).sort(), name).toEqual([...COMMON, ...(ENV[name] ?? [])].sort());
      expect(variables.POWERTOOLS_SERVICE_NAME).toBe(name);
      expect(variables.POWERTOOLS_METRICS_NAMESPACE).toBe("DataDistiller");
      if ("JOBS_TABLE" in variables) expect(variables.JOBS_TABLE).toEqual({ Ref: ids.table });
      if ("UPLOAD_BUCKET" in variables) expect(variables.UPLOAD_BUCKET).toEqual({ Ref: ids.uploads });
      if ("INDEX_BUCKET" in variables) expect(variables.INDEX_BUCKET).toEqual({ Ref: ids.index });
      if ("DEAD_LETTER_BUCKET" in variables) expect(variables.DEAD_LETTER_BUCKET).toEqual({ Ref: ids.deadLetters });
      if ("KAFKA_SASL_MECHANISM" in variables) expect(variables.KAFKA_SASL_MECHANISM).toBe("aws-iam");
      if ("MODEL_DIR" in variables) expect(variables.MODEL_DIR).toBe("/opt/models");
    }
    const uploadUrl = json.Resources[functionId(json, "upload-url")]?.Properties?.Environment.Variables;
    expect(uploadUrl.UPLOAD_METHOD).toBe("PUT");
    expect(uploadUrl.ALLOWED_CONTENT_TYPES).toBe("application/pdf,text/plain,text/markdown,text/html");
    expect(uploadUrl.MAX_UPLOAD_BYTES).toBe(String(50 * 1024 * 1024));
    expect(uploadUrl.TENANT_CLAIM).toBe("tenant");
    expect(uploadUrl.JWT_ISSUER).toBe("https://datadistiller.local/issuer");
    expect(uploadUrl.JWT_AUDIENCE).toBe("datadistiller");
    const collections = json.Resources[functionId(json, "collections")]?.Properties?.Environment.Variables;
    expect(collections.MIGRATION_FANOUT_FUNCTION).toEqual({ Ref: functionId(json, "migration-fanout") });
    expect(collections.EMBEDDING_MODELS).toBe("all-minilm-l6-v2-q,bge-small-en-v1.5-q");
    const deadLetterApi = json.Resources[functionId(json, "dead-letter-api")]?.Properties?.Environment.Variables;
    expect(deadLetterApi.REDRIVE_FUNCTION).toEqual({ Ref: functionId(json, "redrive") });
    const redrive = json.Resources[functionId(json, "redrive")]?.Properties?.Environment.Variables;
    expect([redrive.TOPIC_DOCUMENTS_UPLOADED, redrive.TOPIC_CHUNKS_TO_EMBED, redrive.TOPIC_CHUNKS_EMBEDDED]).toEqual([
      "documents.uploaded",
      "chunks.to-embed",
      "chunks.embedded",
    ]);
  });

  it("node 22+/x86_64, ES module bundles, JSON logs, explicit memory and timeout", () => {
    for (const name of SINGLE_FUNCTION_NAMES) {
      const properties = json.Resources[functionId(json, name)]?.Properties ?? {};
      expect(properties.Runtime, name).toMatch(/^nodejs(2[2-9]|[3-9]\d)\.x$/);
      expect(properties.Architectures, name).toEqual(["x86_64"]);
      expect(properties.Handler, name).toBe("index.handler");
      expect(properties.LoggingConfig, name).toMatchObject({ LogFormat: "JSON" });
      expect(properties.MemorySize, name).toBeGreaterThanOrEqual(128);
      expect(properties.Timeout, name).toBeGreaterThan(0);
    }
  });

  it("model and FAISS functions use the native layer; Kafka consumers reserve one execution per partition", () => {
    const layer = logicalId(json, "AWS::Lambda::LayerVersion", "NativeLayer");
    for (const name of ["split", "embed", "index", "search", "collections"]) {
      expect(json.Resources[functionId(json, name)]?.Properties?.Layers, name).toEqual([{ Ref: layer }]);
    }
    const reserved = (name: string) => json.Resources[functionId(json, name)]?.Properties?.ReservedConcurrentExecutions;
    expect([reserved("split"), reserved("embed"), reserved("index")]).toEqual([6, 12, 6]);
    expect(reserved("search")).toBeUndefined();
    // One redrive at a time (two would replay the same dead letters); S3-notified functions reserve nothing.
    expect(reserved("redrive")).toBe(1);
    expect(reserved("sweeper")).toBe(1);
    expect(reserved("dead-letter")).toBeUndefined();
  });

  it("Kafka producers (redrive and the sweeper too) run in the private subnets; dead-letter stays out of the VPC", () => {
    const vpcConfig = (name: string) => json.Resources[functionId(json, name)]?.Properties?.VpcConfig;
    for (const name of ["on-upload", "split", "embed", "index", "migration-fanout", "redrive", "sweeper"]) {
      expect(vpcConfig(name)?.SubnetIds, name).toEqual(
        expect.arrayContaining([{ Ref: expect.stringMatching(/privateSubnet/) }]),
      );
      expect(vpcConfig(name)?.SecurityGroupIds, name).toEqual(vpcConfig("on-upload")?.SecurityGroupIds);
    }
    expect(vpcConfig("dead-letter")).toBeUndefined();
    // The dead-letter API must reach the token issuer's keys: outside the VPC, it has redrive replay.
    expect(vpcConfig("dead-letter-api")).toBeUndefined();
    // So must the collections API: it has migration-fanout publish a migration's re-embed requests.
    expect(vpcConfig("collections")).toBeUndefined();
  });

  it("the collections API reads and writes the collection's items and segments and invokes migration-fanout, nothing more", () => {
    const statements = statementsOf(json, functionId(json, "collections"));
    const granted = allActions(statements).filter((action) => !action.startsWith("logs:"));
    expect(granted).toEqual([
      "dynamodb:ConditionCheckItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
      "lambda:InvokeFunction",
      "s3:DeleteObject",
      "s3:GetObject",
    ]);
    const invoke = statements.find((statement) => [statement.Action].flat().includes("lambda:InvokeFunction"));
    expect(invoke?.Resource).toEqual({ "Fn::GetAtt": [functionId(json, "migration-fanout"), "Arn"] });
    expect(JSON.stringify(statements.find((s) => s.Sid === "CollectionSegments")?.Resource)).toContain("/index/*");
    // migration-fanout writes chunks.embedded and touches no table or bucket.
    const fanOut = allActions(statementsOf(json, functionId(json, "migration-fanout")));
    expect(fanOut.filter((action) => /^(s3|dynamodb):/.test(action))).toEqual([]);
  });

  it("the dead-letter API lists and reads failed batches and invokes redrive, nothing more", () => {
    const statements = statementsOf(json, functionId(json, "dead-letter-api"));
    const granted = allActions(statements).filter((action) => !action.startsWith("logs:"));
    expect(granted).toEqual(["lambda:InvokeFunction", "s3:GetObject", "s3:ListBucket"]);
    const invoke = statements.find((statement) => [statement.Action].flat().includes("lambda:InvokeFunction"));
    expect(invoke?.Resource).toEqual({ "Fn::GetAtt": [functionId(json, "redrive"), "Arn"] });
  });

  it("no function has wildcard actions or managed policies", () => {
    for (const name of SINGLE_FUNCTION_NAMES) {
      for (const action of allActions(statementsOf(json, functionId(json, name)))) {
        expect(action, name).not.toMatch(/\*$/);
      }
    }
  });

  it("search reads the index bucket and the table, and writes nothing", () => {
    const statements = statementsOf(json, functionId(json, "search"));
    expect(actionsOn(statements, ids.index)).toEqual(["s3:GetObject"]);
    expect(JSON.stringify(statements.find((s) => s.Sid === "ReadSegments")?.Resource)).toContain("/index/*");
    expect(actionsOn(statements, ids.uploads)).toEqual([]);
    // A collection's items (its pointer and its indexes' manifests) in one consistent Query.
    expect(actionsOn(statements, ids.table)).toEqual(["dynamodb:GetItem", "dynamodb:Query"]);
    expect(allActions(statements).filter((a) => /Put|Delete|Update|Write/.test(a) && !a.startsWith("logs:"))).toEqual(
      [],
    );
  });

  it("upload-url may put objects under uploads/ and create jobs, nothing more", () => {
    const statements = statementsOf(json, functionId(json, "upload-url"));
    const put = statements.find((s) => s.Sid === "PresignUpload");
    expect(actionsOf(put as Statement)).toEqual(["s3:PutObject"]);
    expect(put?.Resource).toEqual({ "Fn::Join": ["", [{ "Fn::GetAtt": [ids.uploads, "Arn"] }, "/uploads/*"]] });
    expect(actionsOn(statements, ids.table)).toEqual(["dynamodb:PutItem"]);
    expect(actionsOn(statements, ids.index)).toEqual([]);
    expect(allActions(statements).filter((a) => !a.startsWith("logs:"))).toEqual(["dynamodb:PutItem", "s3:PutObject"]);
  });

  it("job-status only reads the table: one item, or the tenant listing index", () => {
    const statements = statementsOf(json, functionId(json, "job-status"));
    expect(allActions(statements).filter((a) => !a.startsWith("logs:"))).toEqual([
      "dynamodb:GetItem",
      "dynamodb:Query",
    ]);
    expect(actionsOn(statements, "/index/gsi1")).toEqual(["dynamodb:Query"]);
    expect(actionsOn(statements, ids.table)).toEqual(["dynamodb:GetItem", "dynamodb:Query"]);
  });

  it("producers may write only their output topic; consumers read only their input topic and group", () => {
    const topicActions = (name: string, topic: string) =>
      actionsOn(statementsOf(json, functionId(json, name)), `/${topic}`).filter((a) => a.startsWith("kafka-cluster:"));
    expect(topicActions("on-upload", "documents.uploaded")).toEqual([
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]);
    expect(topicActions("split", "documents.uploaded")).toEqual([
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:ReadData",
    ]);
    expect(topicActions("split", "chunks.to-embed")).toEqual([
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]);
    expect(topicActions("embed", "chunks.to-embed")).toEqual(["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]);
    expect(topicActions("embed", "chunks.embedded")).toEqual([
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]);
    expect(topicActions("index", "chunks.embedded")).toEqual(["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]);
    // index writes only chunks.to-embed (a collection's other index, a migration's re-embedding).
    expect(topicActions("index", "chunks.to-embed")).toEqual([
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]);
    expect(topicActions("index", "documents.uploaded")).toEqual([]);
    expect(topicActions("migration-fanout", "chunks.embedded")).toEqual([
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]);
    for (const topic of ["documents.uploaded", "chunks.to-embed", "chunks.embedded"]) {
      expect(topicActions("redrive", topic), topic).toEqual(["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]);
    }
    expect(allActions(statementsOf(json, functionId(json, "redrive"))).filter((a) => a.startsWith("kafka"))).toEqual([
      "kafka-cluster:Connect",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]);
    for (const name of ["upload-url", "search", "job-status", "delete-document", "dead-letter"]) {
      expect(
        allActions(statementsOf(json, functionId(json, name))).filter((a) => a.startsWith("kafka")),
        name,
      ).toEqual([]);
    }
    expect(actionsOn(statementsOf(json, functionId(json, "embed")), "group/")).toEqual([
      "kafka-cluster:AlterGroup",
      "kafka-cluster:DescribeGroup",
    ]);
  });

  it("Kafka consumers may only put (and list) into the dead-letter bucket", () => {
    for (const name of KAFKA_CONSUMERS) {
      expect(actionsOn(statementsOf(json, functionId(json, name)), ids.deadLetters), name).toEqual([
        "s3:ListBucket",
        "s3:PutObject",
      ]);
    }
    for (const name of ["upload-url", "on-upload", "search", "job-status", "delete-document"]) {
      expect(actionsOn(statementsOf(json, functionId(json, name)), ids.deadLetters), name).toEqual([]);
    }
  });

  it("dead-letter reads failed batches under aws/lambda/ and fails their jobs, nothing more", () => {
    const statements = statementsOf(json, functionId(json, "dead-letter"));
    const read = statements.find((s) => s.Sid === "ReadDeadLetter");
    expect(actionsOf(read as Statement)).toEqual(["s3:GetObject"]);
    expect(read?.Resource).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [ids.deadLetters, "Arn"] }, "/aws/lambda/*"]],
    });
    expect(actionsOn(statements, ids.table)).toEqual(["dynamodb:GetItem", "dynamodb:UpdateItem"]);
    expect(actionsOn(statements, ids.uploads)).toEqual([]);
    expect(actionsOn(statements, ids.index)).toEqual([]);
    expect(allActions(statements).filter((a) => !a.startsWith("logs:"))).toEqual([
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
      "s3:GetObject",
    ]);
  });

  it("redrive lists the dead-letter bucket, replays aws/lambda/ batches, archives under redriven/, re-opens jobs", () => {
    const statements = statementsOf(json, functionId(json, "redrive"));
    const bySid = (sid: string) => statements.find((s) => s.Sid === sid);
    expect(actionsOf(bySid("ListDeadLetters") as Statement)).toEqual(["s3:ListBucket"]);
    expect(bySid("ListDeadLetters")?.Resource).toEqual({ "Fn::GetAtt": [ids.deadLetters, "Arn"] });
    expect(actionsOf(bySid("ReplayDeadLetters") as Statement).sort()).toEqual(["s3:DeleteObject", "s3:GetObject"]);
    expect(bySid("ReplayDeadLetters")?.Resource).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [ids.deadLetters, "Arn"] }, "/aws/lambda/*"]],
    });
    expect(actionsOf(bySid("ArchiveDeadLetters") as Statement)).toEqual(["s3:PutObject"]);
    expect(bySid("ArchiveDeadLetters")?.Resource).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [ids.deadLetters, "Arn"] }, "/redriven/*"]],
    });
    expect(actionsOn(statements, ids.deadLetters)).toEqual([
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
    // JobStore.reopen is one conditional UpdateItem.
    expect(actionsOn(statements, ids.table)).toEqual(["dynamodb:UpdateItem"]);
    expect(actionsOn(statements, ids.uploads)).toEqual([]);
    expect(actionsOn(statements, ids.index)).toEqual([]);
    expect(
      allActions(statements).filter((a) => !a.startsWith("logs:") && !a.startsWith("kafka") && !a.startsWith("ec2:")),
    ).toEqual(["dynamodb:UpdateItem", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]);
  });

  it("the sweeper queries upload due dates, reads uploads, replays and archives dead letters, and republishes", () => {
    const statements = statementsOf(json, functionId(json, "sweeper"));
    expect(actionsOn(statements, ids.table)).toEqual([
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:Query", // the table's, and the upload-check index's
      "dynamodb:UpdateItem",
    ]);
    expect(actionsOn(statements, "/index/gsi2")).toEqual(["dynamodb:Query"]);
    expect(actionsOn(statements, "/index/gsi1")).toEqual([]);
    expect(actionsOn(statements, ids.uploads)).toEqual(["s3:GetObject", "s3:ListBucket"]);
    expect(actionsOn(statements, ids.deadLetters)).toEqual([
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
    expect(statements.find((s) => s.Sid === "ArchiveDeadLetters")?.Resource).toEqual({
      "Fn::Join": ["", [{ "Fn::GetAtt": [ids.deadLetters, "Arn"] }, "/redriven/*"]],
    });
    expect(actionsOn(statements, ids.index)).toEqual([]);
    for (const topic of ["documents.uploaded", "chunks.to-embed", "chunks.embedded"]) {
      expect(
        actionsOn(statements, `/${topic}`).filter((a) => a.startsWith("kafka-cluster:")),
        topic,
      ).toEqual(["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]);
    }
  });

  it("split, embed and index read a batch's jobs with BatchGetItem (an action of its own in IAM); embed and index a collection's indexes with Query", () => {
    for (const name of ["embed", "index"]) {
      expect(actionsOn(statementsOf(json, functionId(json, name)), ids.table), name).toEqual([
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
      ]);
    }
    // split reads its batch's jobs in one BatchGetItem and moves each on; a replay reads one.
    expect(actionsOn(statementsOf(json, functionId(json, "split")), ids.table)).toEqual([
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:UpdateItem",
    ]);
  });

  it("every Kafka mapping reports batch item failures; the sweeper runs every minute on a schedule", () => {
    const ofType = (type: string) => Object.values(json.Resources).filter((resource) => resource.Type === type);
    const mappings = ofType("AWS::Lambda::EventSourceMapping");
    expect(mappings).toHaveLength(3);
    for (const mapping of mappings)
      expect(mapping.Properties?.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
    const rules = ofType("AWS::Events::Rule");
    expect(rules).toHaveLength(1);
    expect(rules[0]?.Properties?.ScheduleExpression).toBe("rate(1 minute)");
    expect(rules[0]?.Properties?.Targets[0]?.Arn).toEqual({ "Fn::GetAtt": [functionId(json, "sweeper"), "Arn"] });
  });

  it("the stack outputs the redrive function's name for operators", () => {
    synth.template.hasOutput("RedriveFunctionName", { Value: { Ref: functionId(json, "redrive") } });
  });

  it("index reads and writes segments under index/ only; delete-document touches only the table", () => {
    expect(actionsOn(statementsOf(json, functionId(json, "index")), ids.index)).toEqual([
      "s3:GetObject",
      "s3:PutObject",
    ]);
    expect(actionsOn(statementsOf(json, functionId(json, "index")), ids.uploads)).toEqual([]);
    const deletion = statementsOf(json, functionId(json, "delete-document"));
    // Query: the collection's indexes, each of which gets the tombstone.
    expect(allActions(deletion).filter((a) => !a.startsWith("logs:"))).toEqual([
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]);
  });

  it("on-upload reads uploads (a ranged GET) and may list only the uploads/ prefix", () => {
    const statements = statementsOf(json, functionId(json, "on-upload"));
    expect(actionsOn(statements, ids.uploads)).toEqual(["s3:GetObject", "s3:ListBucket"]);
    expect(statements.find((s) => s.Sid === "ListUploads")?.Condition).toEqual({
      StringLike: { "s3:prefix": ["uploads/*"] },
    });
  });

  it("each function writes only to its own log group", () => {
    for (const name of SINGLE_FUNCTION_NAMES) {
      const fnId = functionId(json, name);
      const logGroup = json.Resources[fnId]?.Properties?.LoggingConfig?.LogGroup;
      const logs = statementsOf(json, fnId).filter((s) => actionsOf(s).some((a) => a.startsWith("logs:")));
      expect(logs, name).toHaveLength(1);
      expect(logs[0]?.Resource, name).toEqual({ "Fn::GetAtt": [logGroup.Ref, "Arn"] });
    }
  });
});

// ---- HTTP API ------------------------------------------------------------------------------------------

describe("HTTP API", () => {
  it("has the routes of the OpenAPI document and a $default route, each with a Lambda integration", () => {
    const routes = logicalIds(json, "AWS::ApiGatewayV2::Route")
      .map((id) => json.Resources[id]?.Properties?.RouteKey)
      .sort();
    const operations = Object.entries(paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes).toEqual(["$default", ...operations].sort());
    for (const id of logicalIds(json, "AWS::ApiGatewayV2::Route")) {
      const target = json.Resources[id]?.Properties?.Target as { "Fn::Join": [string, [string, { Ref: string }]] };
      const integration = json.Resources[target["Fn::Join"][1][1].Ref];
      expect(integration?.Properties).toMatchObject({ IntegrationType: "AWS_PROXY", PayloadFormatVersion: "2.0" });
    }
  });

  it("no route has an API Gateway authorizer: the functions verify tokens (so a 401 is the API's problem)", () => {
    expect(logicalIds(json, "AWS::ApiGatewayV2::Authorizer")).toEqual([]);
    for (const id of logicalIds(json, "AWS::ApiGatewayV2::Route")) {
      const route = json.Resources[id]?.Properties ?? {};
      expect(route.AuthorizationType ?? "NONE", route.RouteKey).toBe("NONE");
    }
  });

  it("the default stage is throttled and writes access logs", () => {
    synth.template.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: {
        DestinationArn: { "Fn::GetAtt": [Match.stringLikeRegexp("^ApiAccessLogs"), "Arn"] },
        Format: Match.stringLikeRegexp("requestId"),
      },
    });
  });
});

// ---- Operations ------------------------------------------------------------------------------------------

describe("alarms and dashboard", () => {
  const alarms = () => logicalIds(json, "AWS::CloudWatch::Alarm").map((id) => json.Resources[id]?.Properties ?? {});
  const named = (suffix: string) => alarms().find((a) => String(a.AlarmName).endsWith(`-${suffix}`));

  it("alarm on dead letters (the dead-letter function's count, or S3 PutRequests on the dead-letter bucket)", () => {
    const alarm = named("dead-letters");
    expect(alarm).toMatchObject({ Threshold: 1 });
    const puts = ((alarm?.Metrics ?? []) as Json[]).find(
      (query) => query.MetricStat?.Metric.MetricName === "PutRequests",
    );
    expect(puts.MetricStat.Metric.Namespace).toBe("AWS/S3");
    expect(puts.MetricStat.Metric.Dimensions).toEqual(
      expect.arrayContaining([{ Name: "BucketName", Value: { Ref: ids.deadLetters } }]),
    );
    synth.template.hasResourceProperties("AWS::S3::Bucket", { MetricsConfigurations: [{ Id: "EntireBucket" }] });
  });

  it("alarm on Kafka offset lag per consumer", () => {
    for (const fn of KAFKA_CONSUMERS) {
      const alarm = named(`${fn}-offset-lag`);
      expect(alarm, fn).toMatchObject({ Namespace: "AWS/Lambda", MetricName: "OffsetLag", Statistic: "Maximum" });
      expect(alarm?.Dimensions).toEqual([{ Name: "FunctionName", Value: { Ref: functionId(json, fn) } }]);
    }
  });

  it("alarm on errors and throttles of every function, API 5xx and p99 latency", () => {
    const shards = Array.from({ length: 10 }, (_, shard) => `search-shard-${shard}`);
    for (const fn of [...SINGLE_FUNCTION_NAMES, ...shards]) {
      expect(named(`${fn}-errors`), fn).toMatchObject({ MetricName: "Errors" });
      expect(named(`${fn}-throttles`), fn).toMatchObject({ MetricName: "Throttles" });
    }
    expect(named("api-5xx")).toMatchObject({ Namespace: "AWS/ApiGateway", MetricName: "5xx" });
    expect(named("api-p99-latency")).toMatchObject({
      Namespace: "AWS/ApiGateway",
      MetricName: "Latency",
      ExtendedStatistic: "p99",
    });
  });

  it("every alarm notifies the SNS topic", () => {
    const topic = logicalId(json, "AWS::SNS::Topic", "OperationsAlarmTopic");
    for (const alarm of alarms()) expect(alarm.AlarmActions, String(alarm.AlarmName)).toEqual([{ Ref: topic }]);
    synth.template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });
});

// ---- cdk-nag -------------------------------------------------------------------------------------------

describe("cdk-nag AwsSolutions", () => {
  it("reports no unacknowledged finding", () => {
    const report = new AwsSolutionsChecks().validateScope(synth.app);
    const findings = report.violations.map(
      (v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(", ")}`,
    );
    expect(findings).toEqual([]);
  });
});

// ---- Variants (no bundling: the code is the same) ------------------------------------------------------

describe("configuration variants", () => {
  it("provisioned MSK: IAM auth, TLS in transit, broker logs; nag-clean", () => {
    const variant = synthesize({ mskMode: "provisioned", mskBrokersPerAz: "2" }, { bundle: false });
    variant.template.resourceCountIs("AWS::MSK::ServerlessCluster", 0);
    variant.template.hasResourceProperties("AWS::MSK::Cluster", {
      NumberOfBrokerNodes: 4,
      ClientAuthentication: { Sasl: { Iam: { Enabled: true } }, Unauthenticated: { Enabled: false } },
      EncryptionInfo: { EncryptionInTransit: { ClientBroker: "TLS", InCluster: true } },
      LoggingInfo: { BrokerLogs: { CloudWatchLogs: { Enabled: true } } },
    });
    expect(new AwsSolutionsChecks().validateScope(variant.app).violations).toEqual([]);
  });

  it("models from S3: MODEL_S3_URI, read and list access to that prefix only; nag-clean", () => {
    const variant = synthesize({ modelLocation: "s3://acme-models/datadistiller/v1" }, { bundle: false });
    for (const name of ["collections", "embed", "search", "split"]) {
      const fnId = functionId(variant.json, name);
      const env = variant.json.Resources[fnId]?.Properties?.Environment.Variables;
      expect(env).toMatchObject({ MODEL_S3_URI: "s3://acme-models/datadistiller/v1", MODEL_DIR: "/tmp/models" });
      const read = statementsOf(variant.json, fnId).find((s) => s.Sid === "ReadModels");
      expect(actionsOf(read as Statement)).toEqual(["s3:GetObject"]);
      expect(JSON.stringify(read?.Resource)).toContain(":s3:::acme-models/datadistiller/v1/*");
      // Each copies the prefix to /tmp during init (syncS3Prefix lists it).
      const list = statementsOf(variant.json, fnId).find((s) => s.Sid === "ListModels") as Statement & {
        Condition?: unknown;
      };
      expect(actionsOf(list), name).toEqual(["s3:ListBucket"]);
      expect(list.Condition).toEqual({ StringLike: { "s3:prefix": ["datadistiller/v1/*"] } });
    }
    expect(new AwsSolutionsChecks().validateScope(variant.app).violations).toEqual([]);
  });

  it("cross-encoder from its own S3 prefix: RERANKER_S3_URI on search only, read and list that prefix only; nag-clean", () => {
    const variant = synthesize({ rerankerLocation: "s3://acme-models/rerankers/bge-base" }, { bundle: false });
    const searchId = functionId(variant.json, "search");
    const env = variant.json.Resources[searchId]?.Properties?.Environment.Variables;
    expect(env).toMatchObject({ RERANKER_S3_URI: "s3://acme-models/rerankers/bge-base", MODEL_DIR: "/opt/models" });
    const statements = statementsOf(variant.json, searchId);
    const read = statements.find((s) => s.Sid === "ReadReranker");
    expect(actionsOf(read as Statement)).toEqual(["s3:GetObject"]);
    expect(JSON.stringify(read?.Resource)).toContain(":s3:::acme-models/rerankers/bge-base/*");
    const list = statements.find((s) => s.Sid === "ListReranker") as Statement & { Condition?: unknown };
    expect(actionsOf(list)).toEqual(["s3:ListBucket"]);
    expect(list.Condition).toEqual({ StringLike: { "s3:prefix": ["rerankers/bge-base/*"] } });
    for (const name of ["embed", "split"]) {
      const other = variant.json.Resources[functionId(variant.json, name)]?.Properties?.Environment.Variables;
      expect(other.RERANKER_S3_URI, name).toBeUndefined();
    }
    expect(new AwsSolutionsChecks().validateScope(variant.app).violations).toEqual([]);
  });

  it("small accounts: no reserved concurrency; destroy policy; a NAT gateway; nag-clean", () => {
    const variant = synthesize(
      {
        reserveConcurrency: "false",
        removalPolicy: "destroy",
        natGateways: "1",
        alarmEmail: "ops@example.com",
        stage: "test",
      },
      { bundle: false },
    );
    expect(variant.stack.stackName).toBe("DataDistiller-test");
    for (const name of SINGLE_FUNCTION_NAMES) {
      const id = functionId(variant.json, name);
      expect(variant.json.Resources[id]?.Properties?.ReservedConcurrentExecutions, id).toBeUndefined();
    }
    variant.template.resourceCountIs("AWS::EC2::NatGateway", 1);
    variant.template.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Delete" });
    variant.template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "ops@example.com",
    });
    expect(new AwsSolutionsChecks().validateScope(variant.app).violations).toEqual([]);
  });

  it("rejects an invalid configuration with every problem listed", () => {
    expect(() =>
      synthesize({ mskMode: "huge", partitionsChunksToEmbed: "0", jwtIssuer: "not a url" }, { bundle: false }),
    ).toThrow(/mskMode[\s\S]*partitionsChunksToEmbed[\s\S]*jwtIssuer/);
  });
});
