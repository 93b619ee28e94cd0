import { CfnOutput, Duration, type RemovalPolicy } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import { Construct } from "constructs";
import type { DataDistillerConfig } from "./config.ts";
import { nodeFunction, toId } from "./lambda-defaults.ts";
import type { Network } from "./network.ts";
import { KEYS, type Storage } from "./storage.ts";
import { type Streaming, TOPICS, type TopicName } from "./streaming.ts";

export const FUNCTION_NAMES = [
  "upload-url",
  "on-upload",
  "split",
  "embed",
  "index",
  "search",
  "job-status",
  "delete-document",
  "dead-letter",
  "redrive",
] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];
export const KAFKA_CONSUMERS = ["split", "embed", "index"] as const;
export type KafkaConsumer = (typeof KAFKA_CONSUMERS)[number];

/**
 * Key layout of the dead-letter bucket (shared/stages/dead-letters.ts): Lambda writes failed batches
 * under aws/lambda/<mapping id>/…; a replayed one moves under redriven/ so it is replayed once.
 */
export const DEAD_LETTER_KEYS = { failed: "aws/lambda/", redriven: "redriven/" } as const;

/** Consumer group of a stage's event source mapping (fixed once created: Lambda cannot change it). */
export const consumerGroupId = (fn: KafkaConsumer) => `datadistiller-${fn}`;

export interface PipelineProps {
  config: DataDistillerConfig;
  network: Network;
  storage: Storage;
  streaming: Streaming;
  nativeLayer: lambda.ILayerVersion;
  removalPolicy: RemovalPolicy;
}

/**
 * Where a Kafka event source mapping sends a batch whose retries ran out: the dead-letter bucket.
 * An S3 destination keeps the failed batch itself (payload + metadata), so it can be replayed.
 *
 * CDK's S3OnFailureDestination grants read/write/delete on the whole bucket; Lambda only needs
 * s3:PutObject and s3:ListBucket, so this grants exactly that.
 */
export class DeadLetterBucketDestination implements lambda.IEventSourceDlq {
  constructor(private readonly bucket: s3.IBucket) {}

  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    targetHandler.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DeadLetterWrite",
        actions: ["s3:PutObject"],
        resources: [this.bucket.arnForObjects("*")],
      }),
    );
    targetHandler.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "DeadLetterList",
        actions: ["s3:ListBucket"],
        resources: [this.bucket.bucketArn],
      }),
    );
    return { destination: this.bucket.bucketArn };
  }
}

interface EventSourceSettings {
  topic: TopicName;
  batchSize: number;
  maxBatchingWindow: Duration;
  bisectBatchOnError: boolean;
}

/**
 * The functions of the request path and of the pipeline, their permissions, the S3 notification
 * that starts a job, and the Kafka event source mappings that move it along.
 */
export class Pipeline extends Construct {
  readonly functions: Record<FunctionName, nodejs.NodejsFunction>;
  readonly eventSources: Record<KafkaConsumer, lambda.EventSourceMapping>;

  constructor(scope: Construct, id: string, props: PipelineProps) {
    super(scope, id);
    const { config, network, storage, streaming, nativeLayer, removalPolicy } = props;
    const { uploadBucket, indexBucket, deadLetterBucket, jobsTable } = storage;

    // ---- Environment: the exact variables each function reads (see shared/adapters/config.ts) ----------
    const base = { STAGE: config.stage };
    const kafka = {
      KAFKA_BROKERS: streaming.bootstrapBrokers,
      KAFKA_SASL_MECHANISM: "aws-iam",
    };
    const modelFromS3 = config.modelLocation.startsWith("s3://");
    const models: Record<string, string> = modelFromS3
      ? { MODEL_DIR: "/tmp/models", MODEL_S3_URI: config.modelLocation }
      : { MODEL_DIR: "/opt/models" };
    const uploadRules = {
      ALLOWED_CONTENT_TYPES: config.allowedContentTypes.join(","),
      MAX_UPLOAD_BYTES: String(config.maxUploadBytes),
    };
    const retention = { JOB_RETENTION_DAYS: String(config.jobRetentionDays) };
    const tenant = { TENANT_CLAIM: config.tenantClaim };
    const common = { logRetentionDays: config.logRetentionDays, removalPolicy };
    const inVpc = {
      vpc: network.vpc,
      vpcSubnets: network.privateSubnets,
      securityGroups: [network.clientSecurityGroup],
    };
    const concurrency = (partitions: number) => (config.reserveConcurrency ? partitions : undefined);

    const fn = (
      name: FunctionName,
      options: Omit<Parameters<typeof nodeFunction>[2], "entry" | "serviceName" | keyof typeof common>,
    ) =>
      nodeFunction(this, toId(name), {
        entry: `functions/${name}/handler.ts`,
        serviceName: name,
        ...common,
        ...options,
      });

    const functions: Record<FunctionName, nodejs.NodejsFunction> = {
      "upload-url": fn("upload-url", {
        description: "POST /uploads: creates a job and a presigned upload (POST form or PUT URL)",
        // Presigning and one DynamoDB write: tiny.
        memorySize: 512,
        timeout: Duration.seconds(10),
        // No reservation: the API stage throttle bounds it.
        environment: {
          ...base,
          ...tenant,
          ...uploadRules,
          ...retention,
          JOBS_TABLE: jobsTable.tableName,
          UPLOAD_BUCKET: uploadBucket.bucketName,
          UPLOAD_METHOD: config.uploadMethod,
          UPLOAD_URL_TTL_SECONDS: String(config.uploadUrlTtlSeconds),
        },
      }),
      "on-upload": fn("on-upload", {
        description:
          "S3 ObjectCreated under uploads/: checks the object, marks the job UPLOADED, publishes documents.uploaded",
        // One ranged read + DynamoDB updates + one Kafka produce; the IAM-auth connect dominates.
        memorySize: 512,
        timeout: Duration.seconds(30),
        // No reservation: S3 invokes asynchronously and Lambda retries throttled events itself.
        ...inVpc,
        environment: {
          ...base,
          ...kafka,
          ...retention,
          JOBS_TABLE: jobsTable.tableName,
          MAX_UPLOAD_BYTES: String(config.maxUploadBytes),
          TOPIC_DOCUMENTS_UPLOADED: TOPICS.documentsUploaded,
        },
      }),
      split: fn("split", {
        description: "documents.uploaded → extracts text, chunks it, publishes chunk groups to chunks.to-embed",
        // PDF extraction of up to maxUploadBytes holds the file, its text and pdf.js state in memory.
        memorySize: config.splitMemoryMb,
        // A large PDF takes minutes; a batch holds splitBatchSize documents.
        timeout: Duration.minutes(10),
        // One invocation per partition at most: reserving the partition count guarantees them.
        reservedConcurrentExecutions: concurrency(config.partitionsDocumentsUploaded),
        ...inVpc,
        // Chunk sizes are counted in the embedder's tokens: the tokenizer comes from the layer.
        layers: [nativeLayer],
        usesNativeLayer: true,
        environment: {
          ...base,
          ...kafka,
          ...models,
          ...retention,
          JOBS_TABLE: jobsTable.tableName,
          TOPIC_CHUNKS_TO_EMBED: TOPICS.chunksToEmbed,
          CHUNKS_PER_GROUP: String(config.chunksPerGroup),
        },
      }),
      embed: fn("embed", {
        description: "chunks.to-embed → embeds chunk groups with ONNX Runtime, publishes to chunks.embedded",
        // CPU-bound inference: Lambda allots vCPU in proportion to memory (4 GB ≈ 2.3 vCPU for
        // onnxruntime's intra-op threads); the model itself needs < 200 MB.
        memorySize: config.embedMemoryMb,
        timeout: Duration.minutes(5),
        // chunks.to-embed is wide (12 partitions) so embedding fans out; the reservation keeps that
        // many workers available even when search traffic peaks, and caps them there.
        reservedConcurrentExecutions: concurrency(config.partitionsChunksToEmbed),
        ...inVpc,
        layers: [nativeLayer],
        usesNativeLayer: true,
        environment: {
          ...base,
          ...kafka,
          ...models,
          ...retention,
          JOBS_TABLE: jobsTable.tableName,
          TOPIC_CHUNKS_EMBEDDED: TOPICS.chunksEmbedded,
        },
      }),
      index: fn("index", {
        description:
          "chunks.embedded → writes one immutable index segment per batch and updates the collection manifest",
        // Builds a FAISS index + BM25 model for a batch; compaction runs in its own function.
        memorySize: config.indexMemoryMb,
        timeout: Duration.minutes(5),
        // chunks.embedded is keyed by collection: one writer per partition keeps a collection's
        // segments in order; never more than the partition count, and those are guaranteed.
        reservedConcurrentExecutions: concurrency(config.partitionsChunksEmbedded),
        // Not in the VPC: it only talks to S3 and DynamoDB (Lambda's pollers read Kafka for it).
        layers: [nativeLayer],
        usesNativeLayer: true,
        environment: {
          ...base,
          ...retention,
          JOBS_TABLE: jobsTable.tableName,
          INDEX_BUCKET: indexBucket.bucketName,
        },
      }),
      search: fn("search", {
        description: "POST /search: BM25 + dense retrieval, RRF fusion, cross-encoder rerank",
        // Holds cached segments and two models; more memory also means more CPU for reranking.
        memorySize: config.searchMemoryMb,
        // API Gateway gives up after 30 s.
        timeout: Duration.seconds(29),
        // No reservation: the API stage throttle bounds it, and idle reservations would cost capacity.
        layers: [nativeLayer],
        usesNativeLayer: true,
        // Room in /tmp for cached segments across warm invocations.
        ephemeralStorageMiB: config.searchCacheMiB,
        environment: {
          ...base,
          ...tenant,
          ...models,
          JOBS_TABLE: jobsTable.tableName,
          INDEX_BUCKET: indexBucket.bucketName,
        },
      }),
      "job-status": fn("job-status", {
        description: "GET /jobs/{id}: state, per-stage counts, timings, errors; GET /jobs: the tenant's jobs",
        memorySize: 256,
        timeout: Duration.seconds(10),
        // No reservation: the API stage throttle bounds it.
        environment: {
          ...base,
          ...tenant,
          JOBS_TABLE: jobsTable.tableName,
          STALL_AFTER_MINUTES: String(config.stallAfterMinutes),
        },
      }),
      "delete-document": fn("delete-document", {
        description: "DELETE /documents/{id}: tombstones the document's live revision in its collection manifest",
        memorySize: 256,
        timeout: Duration.seconds(10),
        // No reservation: the API stage throttle bounds it.
        environment: {
          ...base,
          ...tenant,
          JOBS_TABLE: jobsTable.tableName,
        },
      }),
      "dead-letter": fn("dead-letter", {
        description:
          "S3 ObjectCreated under aws/lambda/ on the dead-letter bucket: fails every job of a dead-lettered Kafka batch",
        // Parses one failed batch (Lambda caps a batch at 6 MB of payload, base64 in JSON) and
        // fails each of its jobs with a GetItem + UpdateItem: small, but room for the decoded batch.
        memorySize: 512,
        timeout: Duration.minutes(1),
        // No reservation: S3 invokes asynchronously and Lambda retries throttled events itself.
        // Not in the VPC: it only talks to S3 and DynamoDB.
        environment: {
          ...base,
          ...retention,
          JOBS_TABLE: jobsTable.tableName,
          DEAD_LETTER_BUCKET: deadLetterBucket.bucketName,
        },
      }),
      redrive: fn("redrive", {
        description:
          "Lists or replays dead-lettered Kafka batches: operators (aws lambda invoke, {tenant?, dryRun?}) and GET /dead-letters, POST /dead-letters/redrive for the caller's tenant",
        // Reads every pending dead letter, republishes its records and moves it under redriven/:
        // sequential S3 + Kafka round trips, a batch (up to 6 MB) in memory at a time.
        memorySize: 512,
        // A backlog of dead letters takes a while; a synchronous `aws lambda invoke` needs
        // --cli-read-timeout above this (the CLI re-sends the request after 60 s otherwise).
        timeout: Duration.minutes(5),
        // One redrive at a time: two concurrent runs would both replay the same dead letters.
        reservedConcurrentExecutions: concurrency(1),
        // In the VPC like the other Kafka producers: MSK is reachable only from the private subnets.
        ...inVpc,
        environment: {
          ...base,
          ...kafka,
          ...retention,
          ...tenant,
          JOBS_TABLE: jobsTable.tableName,
          DEAD_LETTER_BUCKET: deadLetterBucket.bucketName,
          TOPIC_DOCUMENTS_UPLOADED: TOPICS.documentsUploaded,
          TOPIC_CHUNKS_TO_EMBED: TOPICS.chunksToEmbed,
          TOPIC_CHUNKS_EMBEDDED: TOPICS.chunksEmbedded,
        },
      }),
    };
    this.functions = functions;

    // ---- Permissions: exactly what each function's code calls (shared/adapters/*-store.ts) ----------------
    // DynamoDB: JobStore/ManifestStore use GetItem, PutItem, UpdateItem and TransactWriteItems of
    // Put + Update (IAM checks each inner action); only the job listing queries (gsi1); nothing
    // scans or deletes.
    const uploads = uploadBucket.arnForObjects(`${KEYS.uploads}*`);
    const indexObjects = indexBucket.arnForObjects(`${KEYS.index}*`);
    const table = (fnName: FunctionName, actions: string[]) =>
      functions[fnName].addToRolePolicy(
        new iam.PolicyStatement({
          sid: "JobsTable",
          actions: actions.map((action) => `dynamodb:${action}`),
          resources: [jobsTable.tableArn],
        }),
      );
    const objects = (fnName: FunctionName, sid: string, actions: string[], resources: string[]) =>
      functions[fnName].addToRolePolicy(new iam.PolicyStatement({ sid, actions, resources }));

    // upload-url: creates the job; signs the upload (a presigned PUT/POST carries the signer's rights).
    table("upload-url", ["PutItem"]);
    objects("upload-url", "PresignUpload", ["s3:PutObject"], [uploads]);
    // on-upload: one ranged read of the object (its size and leading bytes), moves the job on (or
    // fails it), publishes the event.
    table("on-upload", ["GetItem", "UpdateItem"]);
    objects("on-upload", "ReadUpload", ["s3:GetObject"], [uploads]);
    // A read of a key that is already gone must answer 404 (ignored), not 403 (retried): that takes
    // ListBucket, limited to the uploads/ prefix.
    functions["on-upload"].addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ListUploads",
        actions: ["s3:ListBucket"],
        resources: [uploadBucket.bucketArn],
        conditions: { StringLike: { "s3:prefix": [`${KEYS.uploads}*`] } },
      }),
    );
    streaming.grantProduce(functions["on-upload"], [TOPICS.documentsUploaded]);
    // split: reads the document, moves the job on with its chunk total.
    table("split", ["GetItem", "UpdateItem"]);
    objects("split", "ReadUpload", ["s3:GetObject"], [uploads]);
    streaming.grantProduce(functions.split, [TOPICS.chunksToEmbed]);
    // embed: counts embedded chunks exactly once (marker Put + counter Update in one transaction).
    table("embed", ["GetItem", "PutItem", "UpdateItem"]);
    streaming.grantProduce(functions.embed, [TOPICS.chunksEmbedded]);
    // index: writes segments; commits markers, counters and manifests (compaction has its own function).
    table("index", ["GetItem", "PutItem", "UpdateItem"]);
    objects("index", "IndexSegments", ["s3:GetObject", "s3:PutObject"], [indexObjects]);
    // search: reads manifests and segments, nothing else.
    table("search", ["GetItem"]);
    objects("search", "ReadSegments", ["s3:GetObject"], [indexObjects]);
    // job-status: reads one item; lists a tenant's jobs from the per-tenant index.
    table("job-status", ["GetItem"]);
    functions["job-status"].addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ListTenantJobs",
        actions: ["dynamodb:Query"],
        resources: [`${jobsTable.tableArn}/index/gsi1`],
      }),
    );
    // delete-document: finds the live revision, tombstones it in the manifest (created if missing).
    table("delete-document", ["GetItem", "PutItem", "UpdateItem"]);
    // dead-letter: reads the failed batch it was notified of; reads each job's last error and fails it.
    const failedBatches = deadLetterBucket.arnForObjects(`${DEAD_LETTER_KEYS.failed}*`);
    table("dead-letter", ["GetItem", "UpdateItem"]);
    objects("dead-letter", "ReadDeadLetter", ["s3:GetObject"], [failedBatches]);
    // redrive: lists the bucket (whole: dead letters are found by listing from the root), reads
    // and deletes failed batches, archives them under redriven/, re-opens their jobs (a conditional
    // UpdateItem; JobStore.reopen reads nothing) and republishes to the three pipeline topics.
    table("redrive", ["UpdateItem"]);
    objects("redrive", "ListDeadLetters", ["s3:ListBucket"], [deadLetterBucket.bucketArn]);
    objects("redrive", "ReplayDeadLetters", ["s3:GetObject", "s3:DeleteObject"], [failedBatches]);
    objects(
      "redrive",
      "ArchiveDeadLetters",
      ["s3:PutObject"],
      [deadLetterBucket.arnForObjects(`${DEAD_LETTER_KEYS.redriven}*`)],
    );
    streaming.grantProduce(functions.redrive, [TOPICS.documentsUploaded, TOPICS.chunksToEmbed, TOPICS.chunksEmbedded]);
    if (modelFromS3) {
      const { bucket, prefix } = parseS3Uri(config.modelLocation);
      const modelBucket = s3.Bucket.fromBucketName(this, "ModelBucket", bucket);
      for (const name of ["split", "embed", "search"] as const) {
        objects(name, "ReadModels", ["s3:GetObject"], [modelBucket.arnForObjects(`${prefix}*`)]);
      }
    }

    // ---- Start of the pipeline: S3 → on-upload ---------------------------------------------------
    uploadBucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(functions["on-upload"]), {
      prefix: KEYS.uploads,
    });
    // ---- Dead letters: S3 → dead-letter (fails the batch's jobs); redrive is invoked by hand -------
    // Only aws/lambda/ (where Lambda writes): the redriven/ copies must not fail their jobs again.
    deadLetterBucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.LambdaDestination(functions["dead-letter"]),
      { prefix: DEAD_LETTER_KEYS.failed },
    );
    const redriveName = new CfnOutput(this, "RedriveFunctionName", {
      value: functions.redrive.functionName,
      description:
        "Replays dead-lettered Kafka batches: aws lambda invoke --function-name <this> --cli-binary-format raw-in-base64-out " +
        '--cli-read-timeout 0 --payload \'{"dryRun":true}\' out.json (optional "tenant")',
    });
    // A stable output name at the stack level (the construct path would add a hash).
    redriveName.overrideLogicalId("RedriveFunctionName");

    // ---- Kafka event source mappings ---------------------------------------------------------------
    const settings: Record<KafkaConsumer, EventSourceSettings> = {
      // A document per record and each may take minutes: small batches so one slow PDF holds up few
      // others; bisect isolates a document that fails every time (chunk ids are deterministic, so a
      // re-split of its neighbours publishes the same chunks, which downstream de-duplicates).
      split: {
        topic: TOPICS.documentsUploaded,
        batchSize: config.splitBatchSize,
        maxBatchingWindow: Duration.seconds(1),
        bisectBatchOnError: true,
      },
      // A record is a group of chunksPerGroup chunks; 8 groups ≈ 128 chunks per invocation keeps the
      // ONNX session busy without nearing the timeout. Embedding is stateless: bisect is safe and
      // isolates a poison group.
      embed: {
        topic: TOPICS.chunksToEmbed,
        batchSize: config.embedBatchSize,
        maxBatchingWindow: Duration.seconds(1),
        bisectBatchOnError: true,
      },
      // One batch = one segment: larger batches and a longer window mean fewer, bigger segments
      // (Lambda also caps a batch at 6 MB of payload). No bisect: a retried batch skips the groups
      // already counted (per-group markers), so halving it would only multiply small segments.
      index: {
        topic: TOPICS.chunksEmbedded,
        batchSize: config.indexBatchSize,
        maxBatchingWindow: Duration.seconds(5),
        bisectBatchOnError: false,
      },
    };
    const deadLetters = new DeadLetterBucketDestination(storage.deadLetterBucket);
    const eventSources = {} as Record<KafkaConsumer, lambda.EventSourceMapping>;
    for (const name of KAFKA_CONSUMERS) {
      const target = functions[name];
      const setting = settings[name];
      const groupId = consumerGroupId(name);
      const partitionCount = streaming.partitions[setting.topic];
      streaming.grantConsume(target, setting.topic, groupId);
      // The pollers create network interfaces in the cluster's subnets with the function's role.
      target.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "KafkaEsmNetwork",
          actions: [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
          ],
          resources: ["*"],
        }),
      );
      // What MSK event source mappings support (AWS Lambda, 2025+): batch size, batching window,
      // starting position, consumer group id, filters, and — in provisioned poller mode — the error
      // handling controls: MaximumRetryAttempts, MaximumRecordAgeInSeconds, BisectBatchOnFunctionError,
      // ReportBatchItemFailures and on-failure destinations (SQS, SNS, S3, Kafka). Without a bound,
      // Lambda retries a failing batch until the records expire from the topic and the partition
      // stalls behind it; so retries are bounded and the batch then goes to the dead-letter bucket.
      // ReportBatchItemFailures stays off: the handlers report whole-batch success or failure (and
      // the local runtime implements exactly that), and each stage is idempotent under redelivery.
      const mapping = new lambda.EventSourceMapping(this, `${toId(name)}Events`, {
        target,
        eventSourceArn: streaming.clusterArn,
        kafkaTopic: setting.topic,
        kafkaConsumerGroupId: groupId,
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: setting.batchSize,
        maxBatchingWindow: setting.maxBatchingWindow,
        retryAttempts: config.esmRetryAttempts,
        bisectBatchOnError: setting.bisectBatchOnError,
        onFailure: deadLetters,
        provisionedPollerConfig: {
          minimumPollers: Math.min(config.esmMinimumPollers, partitionCount),
          // More pollers than partitions cannot help: a partition is read by one poller at a time.
          maximumPollers: partitionCount,
        },
      });
      // The topic must exist, and the role's Kafka/S3/EC2 permissions must be in place, before
      // Lambda validates the mapping.
      mapping.node.addDependency(streaming.topicsResource);
      if (target.role) mapping.node.addDependency(target.role);
      eventSources[name] = mapping;
    }
    this.eventSources = eventSources;
  }
}

function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match?.[1]) throw new Error(`not an S3 URI: ${uri}`);
  const prefix = match[2] ?? "";
  return { bucket: match[1], prefix: prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/` };
}
