import { Duration, type RemovalPolicy } from "aws-cdk-lib";
import type * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import type { DataDistillerConfig } from "./config.ts";
import { METRICS_NAMESPACE, toId } from "./lambda-defaults.ts";
import { FUNCTION_NAMES, type FunctionName, KAFKA_CONSUMERS, type KafkaConsumer } from "./pipeline.ts";
import { DEAD_LETTER_METRICS_ID } from "./storage.ts";

/** Offset lag (records behind) above which a consumer is alarming, sustained for 15 minutes. */
export const OFFSET_LAG_THRESHOLD: Record<KafkaConsumer, number> = { split: 50, embed: 2000, index: 2000 };
/** p99 latency of the API above which it is alarming (search reranks; the rest is much faster). */
export const API_P99_LATENCY_MS = 5000;

export interface OperationsProps {
  config: DataDistillerConfig;
  functions: Record<FunctionName, lambda.IFunction>;
  httpApi: apigwv2.HttpApi;
  deadLetterBucket: s3.IBucket;
  removalPolicy: RemovalPolicy;
}

/**
 * Alarms → an SNS topic (optionally e-mailed), and one dashboard: dead letters, Kafka offset lag
 * per consumer, function errors and throttles, API 5xx and p99 latency, and the pipeline's own
 * Powertools metrics.
 */
export class Operations extends Construct {
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { config, functions, httpApi } = props;
    const period = Duration.minutes(5);

    // CloudWatch can publish to an encrypted topic only with a customer-managed key it may use.
    const topicKey = new kms.Key(this, "AlarmTopicKey", {
      description: "DataDistiller alarm topic",
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    topicKey.grant(new iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*");
    this.alarmTopic = new sns.Topic(this, "AlarmTopic", {
      displayName: `DataDistiller ${config.stage} alarms`,
      masterKey: topicKey,
      enforceSSL: true,
    });
    if (config.alarmEmail) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
    const notify = new actions.SnsAction(this.alarmTopic);
    const alarm = (idPart: string, props: cloudwatch.AlarmProps) => {
      const created = new cloudwatch.Alarm(this, idPart, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...props,
        alarmName: `datadistiller-${config.stage}-${props.alarmName}`,
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
      dimensionsMap: { BucketName: props.deadLetterBucket.bucketName, FilterId: DEAD_LETTER_METRICS_ID },
      statistic: cloudwatch.Stats.SUM,
      period,
    });
    alarm("DeadLettersAlarm", {
      alarmName: "dead-letters",
      alarmDescription:
        "A Kafka batch exhausted its retries and was written to the dead-letter bucket. Inspect it and redrive.",
      metric: deadLetterPuts,
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
    for (const name of FUNCTION_NAMES) {
      const fn = functions[name];
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
      dashboardName: `DataDistiller-${config.stage}`,
      defaultInterval: Duration.hours(3),
    });
    const perFunction = (metric: (fn: lambda.IFunction) => cloudwatch.IMetric, names: readonly FunctionName[]) =>
      names.map((name) => metric(functions[name]));
    const apiFunctions = ["upload-url", "search", "job-status", "delete-document"] as const;
    const pipelineFunctions = ["on-upload", "split", "embed", "index"] as const;
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# DataDistiller ${config.stage}\nAlarms notify the stack's alarm topic. Failed Kafka batches are in the dead-letter bucket: fix the cause, then redrive them.`,
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
        left: perFunction((fn) => fn.metricErrors({ period }), FUNCTION_NAMES),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: "Throttles",
        left: perFunction((fn) => fn.metricThrottles({ period }), FUNCTION_NAMES),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: "API function duration (p99, ms)",
        left: perFunction((fn) => fn.metricDuration({ period, statistic: cloudwatch.Stats.p(99) }), apiFunctions),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: `Pipeline metrics (${METRICS_NAMESPACE} namespace, Powertools)`,
        left: [
          new cloudwatch.MathExpression({
            expression: `SEARCH('{${METRICS_NAMESPACE},service} ', 'Sum', 300)`,
            label: "",
            period,
          }),
        ],
        width: 24,
      }),
    );
  }
}
