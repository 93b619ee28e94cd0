import { CfnOutput, Duration, RemovalPolicy } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { SINGLE_FUNCTION_NAMES, type SingleFunctionName } from "../../shared/adapters/config.ts";
import type { Api } from "../api.ts";
import { KAFKA_CONSUMERS, type KafkaConsumer } from "../kafka-consumer.ts";
import { environmentOf, type FunctionDefaults, grantStatement, nodeFunction, toId } from "../lambda-defaults.ts";
import type { Network } from "../network.ts";
import { DEAD_LETTER_KEYS, DEAD_LETTER_METRICS_ID, type Storage } from "../storage.ts";
import { type Streaming, TOPICS } from "../streaming.ts";
import { addPipelineMetrics, catalogMetric } from "./pipeline-metrics.ts";

/** Offset lag (records behind) above which a consumer is alarming, sustained for 15 minutes. */
export const OFFSET_LAG_THRESHOLD: Record<KafkaConsumer, number> = { split: 50, embed: 2000, index: 2000 };
/** p99 latency of the API above which it is alarming (search reranks; the rest is much faster). */
export const API_P99_LATENCY_MS = 5000;

export interface OperationsProps extends FunctionDefaults {
  readonly api: Api;
  readonly network: Network;
  readonly storage: Storage;
  readonly streaming: Streaming;
  /** The other stages' functions: the alarms and the dashboard watch them with this stage's own. */
  readonly functions: Record<Exclude<SingleFunctionName, OperationsFunction>, lambda.IFunction>;
  /**
   * The search-shard functions (one per shard index): errors and throttles alarmed like the others'.
   * @default - none
   */
  readonly shardFunctions?: readonly lambda.IFunction[];
  /**
   * Reserve one execution for redrive and one for the sweeper (two concurrent runs of either
   * would replay the same dead letters).
   * @default true
   */
  readonly reserveSingleRunConcurrency?: boolean;
  /**
   * Largest upload, bytes: the sweeper checks an upload whose event was lost as on-upload does.
   * @default 52428800 (50 MiB)
   */
  readonly maxUploadBytes?: number;
  /**
   * Days a finished job stays readable before its TTL removes it.
   * @default 30
   */
  readonly jobRetentionDays?: number;
  /**
   * The JWT claim that names the tenant.
   * @default "tenant"
   */
  readonly tenantClaim?: string;
  /**
   * E-mail address subscribed to the alarm topic (a confirmation mail is sent at deploy).
   * @default - no subscription
   */
  readonly alarmEmail?: string;
}

/** The functions of this construct. */
export type OperationsFunction = "dead-letter" | "redrive" | "sweeper" | "dead-letter-api";

/**
 * Running the pipeline: dead letters (the dead-letter function fails the jobs of a batch Lambda
 * gave up on; redrive lists and replays them for operators, and for a tenant behind
 * GET /dead-letters and POST /dead-letters/redrive, which the dead-letter API serves), the sweeper
 * (every minute: fails jobs whose upload never arrived, takes up uploads whose event was lost,
 * redrives batches dead-lettered by transient faults), alarms → an SNS topic (optionally e-mailed),
 * and one dashboard: dead letters, Kafka offset lag per consumer, function errors and throttles,
 * API 5xx and p99 latency, and the pipeline's own Powertools metrics.
 */
export class Operations extends Construct {
  readonly deadLetter: nodejs.NodejsFunction;
  readonly redrive: nodejs.NodejsFunction;
  readonly sweeper: nodejs.NodejsFunction;
  readonly deadLetterApi: nodejs.NodejsFunction;
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { storage, streaming } = props;
    const httpApi = props.api.httpApi;
    const stage = props.stage;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const defaults = { stage, logRetentionDays: props.logRetentionDays, removalPolicy: props.removalPolicy };
    const jobRetentionDays = String(props.jobRetentionDays ?? 30);
    const singleRun = (props.reserveSingleRunConcurrency ?? true) ? 1 : undefined;

    this.deadLetter = nodeFunction(this, "DeadLetter", {
      ...defaults,
      entry: "functions/dead-letter/handler.ts",
      serviceName: "dead-letter",
      description:
        "S3 ObjectCreated under aws/lambda/ on the dead-letter bucket: fails every job of a dead-lettered Kafka batch",
      // Parses one failed batch (Lambda caps a batch at 6 MB of payload, base64 in JSON) and
      // fails each of its jobs with a GetItem + UpdateItem: small, but room for the decoded batch.
      memorySize: 512,
      timeout: Duration.minutes(1),
      // No reservation: S3 invokes asynchronously and Lambda retries throttled events itself.
      // Not in the VPC: it only talks to S3 and DynamoDB.
      environment: environmentOf("dead-letter", {
        JOBS_TABLE: storage.jobsTable.tableName,
        DEAD_LETTER_BUCKET: storage.deadLetterBucket.bucketName,
        JOB_RETENTION_DAYS: jobRetentionDays,
      }),
    });
    // Reads the failed batch it was notified of; reads each job's last error and fails it.
    storage.grantJobs(this.deadLetter, "GetItem", "UpdateItem");
    storage.grantDeadLetters(this.deadLetter, "ReadDeadLetter", "failed", "s3:GetObject");
    // S3 → dead-letter, only under aws/lambda/ (where Lambda writes): the redriven/ copies must
    // not fail their jobs again.
    storage.deadLetterBucket.addEventNotification(
      s3.EventType.OBJECT_CREATED,
      new s3n.LambdaDestination(this.deadLetter),
      { prefix: DEAD_LETTER_KEYS.failed },
    );

    this.redrive = nodeFunction(this, "Redrive", {
      ...defaults,
      entry: "functions/redrive/handler.ts",
      serviceName: "redrive",
      description:
        "Lists or replays dead-lettered Kafka batches: operators (aws lambda invoke, {tenant?, dryRun?}) and the dead-letter API for the caller's tenant",
      // Reads every pending dead letter, republishes its records and moves it under redriven/:
      // sequential S3 + Kafka round trips, a batch (up to 6 MB) in memory at a time.
      memorySize: 512,
      // A backlog of dead letters takes a while; a synchronous `aws lambda invoke` needs
      // --cli-read-timeout above this (the CLI re-sends the request after 60 s otherwise).
      timeout: Duration.minutes(5),
      // One redrive at a time: two concurrent runs would both replay the same dead letters.
      reservedConcurrentExecutions: singleRun,
      // In the VPC like the other Kafka producers: MSK is reachable only from the private subnets.
      ...props.network.kafkaClientPlacement,
      environment: environmentOf("redrive", {
        JOBS_TABLE: storage.jobsTable.tableName,
        DEAD_LETTER_BUCKET: storage.deadLetterBucket.bucketName,
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_DOCUMENTS_UPLOADED: TOPICS.documentsUploaded,
        TOPIC_CHUNKS_TO_EMBED: TOPICS.chunksToEmbed,
        TOPIC_CHUNKS_EMBEDDED: TOPICS.chunksEmbedded,
        JOB_RETENTION_DAYS: jobRetentionDays,
      }),
    });
    // Lists the bucket (whole: dead letters are found by listing from the root), reads and deletes
    // failed batches, archives them under redriven/, re-opens their jobs (a conditional
    // UpdateItem; JobStore.reopen reads nothing) and republishes to the three pipeline topics.
    storage.grantJobs(this.redrive, "UpdateItem");
    storage.grantListDeadLetters(this.redrive);
    storage.grantDeadLetters(this.redrive, "ReplayDeadLetters", "failed", "s3:GetObject", "s3:DeleteObject");
    storage.grantDeadLetters(this.redrive, "ArchiveDeadLetters", "redriven", "s3:PutObject");
    streaming.grantProduce(this.redrive, [TOPICS.documentsUploaded, TOPICS.chunksToEmbed, TOPICS.chunksEmbedded]);
    const redriveName = new CfnOutput(this, "RedriveFunctionName", {
      value: this.redrive.functionName,
      description:
        "Replays dead-lettered Kafka batches: aws lambda invoke --function-name <this> --cli-binary-format raw-in-base64-out " +
        '--cli-read-timeout 0 --payload \'{"dryRun":true}\' out.json (optional "tenant")',
    });
    // A stable output name at the stack level (the construct path would add a hash).
    redriveName.overrideLogicalId("RedriveFunctionName");

    this.sweeper = nodeFunction(this, "Sweeper", {
      ...defaults,
      entry: "functions/sweeper/handler.ts",
      serviceName: "sweeper",
      description:
        "Every minute: fails jobs whose upload never arrived, takes up uploads whose event was lost, redrives batches dead-lettered by transient faults",
      // A few queries, HEADs and small writes per due job, and a produce per dead letter.
      memorySize: 512,
      timeout: Duration.minutes(2),
      // One run at a time: two concurrent runs would both redrive the same dead letters.
      reservedConcurrentExecutions: singleRun,
      // In the VPC like the other Kafka producers.
      ...props.network.kafkaClientPlacement,
      environment: environmentOf("sweeper", {
        JOBS_TABLE: storage.jobsTable.tableName,
        UPLOAD_BUCKET: storage.uploadBucket.bucketName,
        DEAD_LETTER_BUCKET: storage.deadLetterBucket.bucketName,
        MAX_UPLOAD_BYTES: String(props.maxUploadBytes ?? 50 * 1024 * 1024),
        KAFKA_BROKERS: streaming.bootstrapBrokers,
        KAFKA_SASL_MECHANISM: "aws-iam",
        TOPIC_DOCUMENTS_UPLOADED: TOPICS.documentsUploaded,
        JOB_RETENTION_DAYS: jobRetentionDays,
      }),
    });
    // Queries the upload-check index for due jobs (and the UPLOADCHECK#n partitions where checks
    // were items of their own before: drained, then dropped with BatchWriteItem), reads the due
    // jobs (BatchGetItem) and moves them on or their check later (UpdateItem); HEADs and reads
    // uploads (the listing makes a missing key a 404); lists, reads, archives and deletes dead
    // letters; republishes them and documents.uploaded.
    storage.grantJobs(this.sweeper, "GetItem", "BatchGetItem", "UpdateItem", "Query", "BatchWriteItem");
    storage.grantDueUploads(this.sweeper);
    storage.grantUploads(this.sweeper, "ReadUploads", "s3:GetObject");
    storage.grantListUploads(this.sweeper);
    storage.grantListDeadLetters(this.sweeper);
    storage.grantDeadLetters(this.sweeper, "ReplayDeadLetters", "failed", "s3:GetObject", "s3:DeleteObject");
    storage.grantDeadLetters(this.sweeper, "ArchiveDeadLetters", "redriven", "s3:PutObject");
    streaming.grantProduce(this.sweeper, [TOPICS.documentsUploaded, TOPICS.chunksToEmbed, TOPICS.chunksEmbedded]);
    new events.Rule(this, "SweeperSchedule", {
      description: "Runs the operations sweeper every minute",
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.sweeper, { retryAttempts: 0 })],
    });
    // The tenant's side of the same, behind the HTTP API. Outside the VPC: it verifies bearer
    // tokens against the issuer's keys (on the internet), which a function in the private subnets
    // cannot reach; replaying needs Kafka, so it invokes redrive for the caller's tenant.
    this.deadLetterApi = nodeFunction(this, "DeadLetterApi", {
      ...defaults,
      entry: "functions/dead-letter-api/handler.ts",
      serviceName: "dead-letter-api",
      description: "GET /dead-letters, POST /dead-letters/redrive for the caller's tenant (invokes redrive)",
      // Lists and parses the failed batches (a batch up to 6 MB at a time).
      memorySize: 256,
      // Waits for the redrive function; API Gateway gives up after 30 s.
      timeout: Duration.seconds(29),
      // No reservation: the API stage throttle bounds it; redrive itself runs one at a time.
      environment: environmentOf("dead-letter-api", {
        DEAD_LETTER_BUCKET: storage.deadLetterBucket.bucketName,
        REDRIVE_FUNCTION: this.redrive.functionName,
        TENANT_CLAIM: props.tenantClaim ?? "tenant",
        ...props.api.tokenVerification,
      }),
    });
    // Lists and reads failed batches; has redrive replay them (the function itself, no versions).
    storage.grantListDeadLetters(this.deadLetterApi);
    storage.grantDeadLetters(this.deadLetterApi, "ReadDeadLetters", "failed", "s3:GetObject");
    grantStatement({
      grantee: this.deadLetterApi,
      sid: "InvokeRedrive",
      actions: ["lambda:InvokeFunction"],
      resourceArns: [this.redrive.functionArn],
    });
    props.api.addRoutes("dead-letter-api", this.deadLetterApi);

    const functions: Record<SingleFunctionName, lambda.IFunction> = {
      ...props.functions,
      "dead-letter": this.deadLetter,
      redrive: this.redrive,
      sweeper: this.sweeper,
      "dead-letter-api": this.deadLetterApi,
    };
    const period = Duration.minutes(5);

    // CloudWatch can publish to an encrypted topic only with a customer-managed key it may use.
    const topicKey = new kms.Key(this, "AlarmTopicKey", {
      description: "DataDistiller alarm topic",
      enableKeyRotation: true,
      removalPolicy,
    });
    topicKey.grant(new iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*");
    this.alarmTopic = new sns.Topic(this, "AlarmTopic", {
      displayName: `DataDistiller ${stage} alarms`,
      masterKey: topicKey,
      enforceSSL: true,
    });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    const notify = new actions.SnsAction(this.alarmTopic);
    const alarm = (idPart: string, props: cloudwatch.AlarmProps) => {
      const created = new cloudwatch.Alarm(this, idPart, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...props,
        alarmName: `datadistiller-${stage}-${props.alarmName}`,
      });
      created.addAlarmAction(notify);
      created.addOkAction(notify);
      this.alarms.push(created);
      return created;
    };

    // Dead letters: any object written to the dead-letter bucket is a batch that failed for good.
    const deadLetterPuts = new cloudwatch.Metric({
      namespace: "AWS/S3",
      metricName: "PutRequests",
      dimensionsMap: { BucketName: storage.deadLetterBucket.bucketName, FilterId: DEAD_LETTER_METRICS_ID },
      statistic: cloudwatch.Stats.SUM,
      period,
    });
    alarm("DeadLettersAlarm", {
      alarmName: "dead-letters",
      alarmDescription:
        "A Kafka batch exhausted its retries and was written to the dead-letter bucket. Inspect it and redrive.",
      // The dead-letter function's count (DeadLetters), or the bucket's own writes should it fail.
      metric: new cloudwatch.MathExpression({
        expression: "MAX([FILL(emitted, 0), FILL(puts, 0)])",
        usingMetrics: {
          emitted: catalogMetric("DeadLetters", { service: "dead-letter" }, { period }),
          puts: deadLetterPuts,
        },
        label: "dead letters",
        period,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });

    // Kafka offset lag of each consumer (Lambda publishes OffsetLag per function for Kafka ESMs).
    const lagMetrics: cloudwatch.Metric[] = [];
    for (const name of KAFKA_CONSUMERS) {
      const lag = new cloudwatch.Metric({
        namespace: "AWS/Lambda",
        metricName: "OffsetLag",
        dimensionsMap: { FunctionName: functions[name].functionName },
        statistic: cloudwatch.Stats.MAXIMUM,
        period,
      });
      lagMetrics.push(lag.with({ label: `${name} offset lag` }));
      alarm(`${toId(name)}OffsetLagAlarm`, {
        alarmName: `${name}-offset-lag`,
        alarmDescription: `The ${name} consumer is more than ${OFFSET_LAG_THRESHOLD[name]} records behind for 15 minutes.`,
        metric: lag,
        threshold: OFFSET_LAG_THRESHOLD[name],
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
      });
    }

    // Errors and throttles of every function.
    const watched: [string, lambda.IFunction][] = [
      ...SINGLE_FUNCTION_NAMES.map((name): [string, lambda.IFunction] => [name, functions[name]]),
      ...(props.shardFunctions ?? []).map((fn, shard): [string, lambda.IFunction] => [`search-shard-${shard}`, fn]),
    ];
    for (const [name, fn] of watched) {
      alarm(`${toId(name)}ErrorsAlarm`, {
        alarmName: `${name}-errors`,
        alarmDescription: `${name} invocations failed.`,
        metric: fn.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm(`${toId(name)}ThrottlesAlarm`, {
        alarmName: `${name}-throttles`,
        alarmDescription: `${name} invocations were throttled (concurrency exhausted).`,
        metric: fn.metricThrottles({ period, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    // API: server errors and p99 latency.
    const api5xx = httpApi.metricServerError({ period, statistic: cloudwatch.Stats.SUM });
    alarm("Api5xxAlarm", {
      alarmName: "api-5xx",
      alarmDescription: "The HTTP API answered 5xx (function errors, timeouts or throttling behind it).",
      metric: api5xx,
      threshold: 5,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
    const apiP99 = httpApi.metricLatency({ period, statistic: cloudwatch.Stats.p(99) });
    alarm("ApiLatencyAlarm", {
      alarmName: "api-p99-latency",
      alarmDescription: `The HTTP API's p99 latency is above ${API_P99_LATENCY_MS} ms for 15 minutes.`,
      metric: apiP99,
      threshold: API_P99_LATENCY_MS,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
    });

    // Dashboard.
    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: `DataDistiller-${stage}`,
      defaultInterval: Duration.hours(3),
    });
    const perFunction = (metric: (fn: lambda.IFunction) => cloudwatch.IMetric, names: readonly SingleFunctionName[]) =>
      names.map((name) => metric(functions[name]));
    const apiFunctions = ["upload-url", "search", "job-status", "delete-document", "dead-letter-api"] as const;
    const pipelineFunctions = ["on-upload", "split", "embed", "index"] as const;
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# DataDistiller ${stage}\nAlarms notify the stack's alarm topic. Failed Kafka batches are in the dead-letter bucket: fix the cause, then redrive them.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "API requests / 4xx / 5xx",
        left: [httpApi.metricCount({ period }), httpApi.metricClientError({ period }), api5xx],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: "API latency (p50 / p99, ms)",
        left: [httpApi.metricLatency({ period, statistic: cloudwatch.Stats.p(50) }), apiP99],
        width: 8,
      }),
      new cloudwatch.GraphWidget({ title: "Dead letters written", left: [deadLetterPuts], width: 8 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: "Kafka offset lag (max)", left: lagMetrics, width: 12 }),
      new cloudwatch.GraphWidget({
        title: "Pipeline duration (p90, ms)",
        left: perFunction((fn) => fn.metricDuration({ period, statistic: cloudwatch.Stats.p(90) }), pipelineFunctions),
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "Errors",
        left: perFunction((fn) => fn.metricErrors({ period }), SINGLE_FUNCTION_NAMES),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: "Throttles",
        left: perFunction((fn) => fn.metricThrottles({ period }), SINGLE_FUNCTION_NAMES),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: "API function duration (p99, ms)",
        left: perFunction((fn) => fn.metricDuration({ period, statistic: cloudwatch.Stats.p(99) }), apiFunctions),
        width: 8,
      }),
    );
    addPipelineMetrics({
      dashboard: this.dashboard,
      alarm,
      offsetLag: lagMetrics,
      deadLetterPuts,
      period,
    });
  }
}
