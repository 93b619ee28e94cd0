import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { type Admin, Kafka, logLevel } from "kafkajs";
import { Gauge, Registry } from "prom-client";
import { consumerLag, type PartitionLag } from "./consumer-lag.ts";
import { EmfPrometheus, type MetricDescription } from "./emf-metrics.ts";
import { type FunctionDefinition, FunctionHost } from "./function-host.ts";
import { type CorsDefinition, HttpApi, type JwtVerifier, type LocalHandler, type RouteDefinition } from "./http-api.ts";
import { type FailureDestination, KafkaEventSource } from "./kafka-event-source.ts";
import { LambdaApi } from "./lambda-api.ts";
import { type LocalTargets, physicalResource, provisionBucket, provisionTable, provisionTopics } from "./provision.ts";
import { type S3NotificationSubscription, type S3Notifications, startS3Notifications } from "./s3-notifications.ts";
import { loadCloudAssembly, type PhysicalResource, Resolver, type Resource, type StackTemplate } from "./template.ts";

/** A template function as the local runtime is about to run it (for per-function settings). */
export interface LocalFunction {
  logicalId: string;
  /** The resource's template metadata (e.g. what the app that synthesized it recorded there). */
  metadata: Record<string, unknown>;
  /** Execution environments that may run at once on this machine. */
  concurrency: number;
  /**
   * The runtime's Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), for a
   * function that invokes others through the AWS SDK (AWS_ENDPOINT_URL_LAMBDA points it there).
   */
  lambdaEndpoint: string;
}

export interface RuntimeOptions {
  cdkOut: string;
  /** The servers' endpoints and credentials (S3_ENDPOINT, DYNAMODB_ENDPOINT, KAFKA_BROKERS, AWS_*). */
  stackEnv: Record<string, string>;
  /**
   * Variables a function gets on top of its template environment and the endpoints (the app's
   * local settings: where its models are, how its clients authenticate, threads per environment).
   */
  functionEnv?: (fn: LocalFunction) => Record<string, string>;
  /**
   * The node_modules folder the bundles resolve their external packages from (in AWS those come
   * from layers); linked into the cloud assembly folder.
   */
  nodeModules?: string;
  /** Where the S3 server POSTs its events (required when the template has bucket notifications). */
  s3EventsWebhook?: string;
  /** Verifies bearer tokens for routes with a JWT authorizer (without one, those routes answer 401). */
  verifyJwt?: JwtVerifier;
  apiPort: number;
  /** At most this many execution environments per function (the template's reserved concurrency caps it too). */
  maxConcurrency?: number;
  /**
   * At most this many per function behind an HTTP route (default: maxConcurrency). Lambda runs
   * every request a client waits on in an environment of its own; more of them here lets
   * requests overlap their waits on the servers instead of queueing behind each other.
   */
  maxRequestConcurrency?: number;
  /**
   * Niceness of the environments of functions no client waits on (0: the same CPU priority as
   * the rest). Lambda gives every environment CPU of its own; on one machine the pipeline's work
   * would otherwise queue the requests clients are waiting on behind it. The price: on a machine
   * busy with other work, the pipeline gets less of it.
   */
  backgroundNiceness?: number;
  localHandlers?: LocalHandler[];
  log?: (line: string) => void;
  /** Only provision and prepare the functions: no event sources, notifications or API (one-off invocations). */
  functionsOnly?: boolean;
  /**
   * How the functions' embedded-format metrics are exposed at GET /metrics (names, kinds, labels),
   * and what the Kafka event sources' lag gauge is called. Metrics not described are named by
   * their unit's rule (see emf-metrics.ts).
   */
  metrics?: {
    descriptions?: readonly MetricDescription[];
    consumerLag?: { prometheusName: string; help: string };
  };
}

/** The media type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

interface Located {
  stack: StackTemplate;
  logicalId: string;
  resource: Resource;
}

/**
 * Runs a synthesized cloud assembly on the local servers, wired as the template declares it:
 * buckets, tables and topics provisioned; functions run from their bundled assets with their
 * template environment; Kafka event source mappings, S3 notifications and HTTP API routes
 * delivering the events AWS would.
 */
export class LocalRuntime {
  readonly hosts = new Map<string, FunctionHost>();
  readonly eventSources: KafkaEventSource[] = [];
  private api: HttpApi | undefined;
  private lambdaApi: LambdaApi | undefined;
  private lambdaEndpoint = "";
  private functionsByLogicalId = new Map<string, Located>();
  private hostFor: ((nameOrArn: string) => FunctionHost) | undefined;
  private notifications: S3Notifications | undefined;
  private readonly schedules: Schedule[] = [];
  apiUrl = "";
  /** Physical names by logical id, for tools and tests (buckets, tables, functions). */
  readonly names = new Map<string, string>();
  /** The functions' metrics (from their EMF lines) and the event sources' lag, served at GET /metrics. */
  readonly registry = new Registry();
  private readonly emf: EmfPrometheus;

  private constructor(
    private readonly options: RuntimeOptions,
    private readonly targets: LocalTargets,
    private readonly kafka: Kafka,
  ) {
    this.emf = new EmfPrometheus(this.registry, options.metrics?.descriptions ?? []);
    const lagMetric = options.metrics?.consumerLag ?? {
      prometheusName: "kafka_consumer_lag",
      help: "Records a Kafka event source's consumer group is behind, per topic and partition.",
    };
    const runtime = this;
    new Gauge({
      name: lagMetric.prometheusName,
      help: lagMetric.help,
      labelNames: ["group", "topic", "partition"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const lag of await runtime.consumerLag()) {
          this.set({ group: lag.group, topic: lag.topic, partition: String(lag.partition) }, lag.lag);
        }
      },
    });
  }

  /** Lag of every Kafka event source, per topic and partition (committed vs end offsets). */
  async consumerLag(): Promise<PartitionLag[]> {
    const lags = await Promise.all(
      this.eventSources.map(({ mapping }) =>
        consumerLag(
          this.targets.kafkaAdmin,
          mapping.consumerGroupId,
          mapping.topics,
          mapping.startingPosition === "TRIM_HORIZON",
        ),
      ),
    );
    return lags.flat();
  }

  /** The Prometheus exposition (what GET /metrics answers). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  static async start(options: RuntimeOptions): Promise<LocalRuntime> {
    const env = options.stackEnv;
    const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID ?? "", secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? "" };
    const region = env.AWS_REGION ?? "us-east-1";
    const log = options.log ?? ((text: string) => process.stderr.write(`${text}\n`));
    const kafka = new Kafka({
      clientId: "local-runtime",
      brokers: (env.KAFKA_BROKERS ?? "").split(","),
      logLevel: logLevel.WARN,
      // The event sources' client logs into the runtime's log, not straight to stderr: while the
      // broker is away it reports every reconnection attempt.
      logCreator:
        () =>
        ({ level, log: entry }) =>
          log(
            `[kafka ${level === logLevel.ERROR ? "error" : "warn"}] ${entry.message}${entry.broker ? ` (${entry.broker})` : ""}`,
          ),
    });
    const kafkaAdmin: Admin = kafka.admin();
    await kafkaAdmin.connect();
    const targets: LocalTargets = {
      s3: new S3Client({ endpoint: env.S3_ENDPOINT, forcePathStyle: true, region, credentials }),
      dynamodb: new DynamoDBClient({ endpoint: env.DYNAMODB_ENDPOINT, region, credentials }),
      kafkaAdmin,
      kafkaBrokers: env.KAFKA_BROKERS ?? "",
      region,
      accountId: "000000000000",
    };
    const runtime = new LocalRuntime(options, targets, kafka);
    try {
      await runtime.wire();
    } catch (error) {
      await runtime.stop();
      throw error;
    }
    return runtime;
  }

  async stop(): Promise<void> {
    for (const schedule of this.schedules) schedule.stop();
    await Promise.allSettled(this.schedules.map((schedule) => schedule.running));
    await this.api?.close();
    await this.lambdaApi?.close();
    await this.notifications?.stop();
    await Promise.all(this.eventSources.map((source) => source.stop().catch(() => {})));
    await Promise.all([...this.hosts.values()].map((host) => host.close()));
    await this.targets.kafkaAdmin.disconnect();
  }

  private log(line: string): void {
    (this.options.log ?? ((text: string) => process.stderr.write(`${text}\n`)))(line);
  }

  private async wire(): Promise<void> {
    const stacks = loadCloudAssembly(this.options.cdkOut);
    const physical = new Map<string, PhysicalResource>();
    const all: Located[] = [];
    for (const stack of stacks) {
      for (const [logicalId, resource] of Object.entries(stack.Resources)) {
        all.push({ stack, logicalId, resource });
        physical.set(logicalId, physicalResource(stack, logicalId, resource, this.targets));
      }
    }
    const resolver = new Resolver(physical, { region: this.targets.region, accountId: this.targets.accountId });
    for (const stack of stacks) resolver.addExports(stack);
    const live = all.filter(
      ({ stack, resource }) => !resource.Condition || resolver.isConditionTrue(stack, resource.Condition),
    );
    const props = ({ stack, resource }: Located) =>
      resolver.resolve(stack, resource.Properties ?? {}) as Record<string, unknown>;
    const ofType = (...types: string[]) => live.filter(({ resource }) => types.includes(resource.Type));
    for (const [logicalId, resource] of physical) this.names.set(logicalId, resource.ref);

    // 1. Storage and topics.
    for (const located of ofType("AWS::S3::Bucket")) {
      await provisionBucket(this.targets, physical.get(located.logicalId)?.ref ?? "", props(located));
    }
    for (const located of ofType("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")) {
      await provisionTable(this.targets, physical.get(located.logicalId)?.ref ?? "", props(located));
    }
    for (const located of ofType("Custom::KafkaTopics")) {
      const topics = await provisionTopics(this.targets, props(located));
      this.log(`topics: ${topics.join(", ")}`);
    }

    // 2. Functions, started on first use.
    const functionsByArn = new Map<string, Located>();
    for (const located of ofType("AWS::Lambda::Function")) {
      const resource = physical.get(located.logicalId);
      if (resource) {
        functionsByArn.set(resource.attributes.Arn ?? "", located);
        functionsByArn.set(resource.ref, located);
      }
    }
    for (const located of functionsByArn.values()) this.functionsByLogicalId.set(located.logicalId, located);
    const locate = (nameOrArn: string) =>
      functionsByArn.get(nameOrArn) ?? functionsByArn.get(nameOrArn.split(":").at(-1) ?? "");
    // Functions a client waits on: the targets of HTTP routes, and the functions those invoke
    // (named in their environment, as search names its shards).
    const routed = new Set(
      ofType("AWS::ApiGatewayV2::Integration").flatMap(
        (located) => locate(String(props(located).IntegrationUri))?.logicalId ?? [],
      ),
    );
    for (const logicalId of [...routed]) {
      // Function names as whole words of the environment's values (a list, an ARN's last part).
      const words = new Set(
        JSON.stringify(props(this.functionsByLogicalId.get(logicalId) as Located).Environment ?? {})
          .split(/[^\w-]+/)
          .filter(Boolean),
      );
      for (const other of this.functionsByLogicalId.keys()) {
        if (words.has(physical.get(other)?.ref ?? "")) routed.add(other);
      }
    }
    const host = (nameOrArn: string): FunctionHost => {
      const located = locate(nameOrArn);
      if (!located) throw new Error(`the template refers to a function it does not declare: ${nameOrArn}`);
      let created = this.hosts.get(located.logicalId);
      if (!created) {
        created = new FunctionHost(
          this.functionDefinition(located, props(located), routed.has(located.logicalId)),
          (line) => this.log(line),
          (line) => this.emf.ingest(line),
        );
        this.hosts.set(located.logicalId, created);
      }
      return created;
    };
    this.hostFor = host;
    // Lambda's Invoke API, for functions that invoke others (their environments point at it).
    this.lambdaApi = new LambdaApi((nameOrArn) => {
      try {
        return host(nameOrArn);
      } catch {
        return undefined;
      }
    });
    this.lambdaEndpoint = await this.lambdaApi.listen();
    if (this.options.functionsOnly) return;

    // 3. Kafka event source mappings.
    for (const located of ofType("AWS::Lambda::EventSourceMapping")) {
      const mapping = props(located);
      const topics = mapping.Topics as string[] | undefined;
      if (!topics?.length) continue;
      const target = host(String(mapping.FunctionName));
      const destination = (mapping.DestinationConfig as { OnFailure?: { Destination?: string } } | undefined)?.OnFailure
        ?.Destination;
      const groupId =
        (mapping.AmazonManagedKafkaEventSourceConfig as { ConsumerGroupId?: string } | undefined)?.ConsumerGroupId ??
        (mapping.SelfManagedKafkaEventSourceConfig as { ConsumerGroupId?: string } | undefined)?.ConsumerGroupId ??
        located.logicalId;
      const source = new KafkaEventSource(
        this.kafka,
        {
          id: located.logicalId,
          topics,
          consumerGroupId: groupId,
          batchSize: Number(mapping.BatchSize ?? 100),
          maximumBatchingWindowSeconds: Number(mapping.MaximumBatchingWindowInSeconds ?? 0.5),
          startingPosition: mapping.StartingPosition === "LATEST" ? "LATEST" : "TRIM_HORIZON",
          maximumRetryAttempts: Number(mapping.MaximumRetryAttempts ?? -1),
          bisectBatchOnFunctionError: mapping.BisectBatchOnFunctionError === true,
          reportBatchItemFailures: ((mapping.FunctionResponseTypes as string[] | undefined) ?? []).includes(
            "ReportBatchItemFailures",
          ),
          eventSourceArn: String(
            mapping.EventSourceArn ?? `arn:aws:kafka:${this.targets.region}:000000000000:cluster/local/local`,
          ),
          bootstrapServers: this.targets.kafkaBrokers,
        },
        target,
        destination ? this.failureDestination(destination, located.logicalId) : undefined,
        (line) => this.log(line),
      );
      const partitions = await this.partitionCount(topics);
      await source.start(Math.max(1, Math.min(partitions, target.definition.concurrency)));
      this.eventSources.push(source);
      this.log(`event source ${located.logicalId}: ${topics.join(",")} → ${target.definition.name} (group ${groupId})`);
    }

    // 4. S3 notifications to functions.
    const subscriptions: S3NotificationSubscription[] = [];
    for (const located of ofType("Custom::S3BucketNotifications")) {
      const properties = props(located);
      const configurations =
        (
          properties.NotificationConfiguration as
            | { LambdaFunctionConfigurations?: Record<string, unknown>[] }
            | undefined
        )?.LambdaFunctionConfigurations ?? [];
      for (const configuration of configurations) {
        const rules =
          (configuration.Filter as { Key?: { FilterRules?: { Name: string; Value: string }[] } } | undefined)?.Key
            ?.FilterRules ?? [];
        subscriptions.push({
          bucket: String(properties.BucketName),
          events: configuration.Events as string[],
          prefix: rules.find((rule) => rule.Name.toLowerCase() === "prefix")?.Value ?? "",
          suffix: rules.find((rule) => rule.Name.toLowerCase() === "suffix")?.Value ?? "",
          target: host(String(configuration.LambdaFunctionArn)),
        });
      }
    }
    if (subscriptions.length > 0) {
      this.notifications = await startS3Notifications(
        subscriptions,
        (line) => this.log(line),
        this.options.s3EventsWebhook ?? "",
      );
      for (const subscription of subscriptions) {
        this.log(
          `s3 notification: ${subscription.bucket}/${subscription.prefix}* → ${subscription.target.definition.name}`,
        );
      }
    }

    // 5. Scheduled rules (EventBridge) to functions.
    for (const located of ofType("AWS::Events::Rule")) {
      const rule = props(located);
      const expression = typeof rule.ScheduleExpression === "string" ? rule.ScheduleExpression : undefined;
      if (!expression || rule.State === "DISABLED") continue;
      const periodMs = ratePeriodMs(expression);
      if (periodMs === undefined) {
        this.log(`schedule ${located.logicalId}: ${expression} is not emulated (only rate(...) is)`);
        continue;
      }
      for (const target of (rule.Targets as { Arn?: string }[] | undefined) ?? []) {
        if (!target.Arn?.includes(":function:") && !functionsByArn.has(String(target.Arn))) continue;
        const fnHost = host(String(target.Arn));
        const ruleArn = `arn:aws:events:${this.targets.region}:${this.targets.accountId}:rule/${located.logicalId}`;
        this.schedules.push(startSchedule(fnHost, periodMs, ruleArn, this.targets, (line) => this.log(line)));
        this.log(`schedule ${located.logicalId}: ${expression} → ${fnHost.definition.name}`);
      }
    }

    // 6. HTTP API routes.
    const routes: RouteDefinition[] = [];
    let cors: CorsDefinition | undefined;
    for (const located of ofType("AWS::ApiGatewayV2::Api")) {
      const corsConfiguration = props(located).CorsConfiguration as Record<string, unknown> | undefined;
      if (corsConfiguration) {
        cors = {
          allowOrigins: (corsConfiguration.AllowOrigins as string[]) ?? ["*"],
          allowMethods: (corsConfiguration.AllowMethods as string[]) ?? ["*"],
          allowHeaders: (corsConfiguration.AllowHeaders as string[]) ?? ["*"],
          maxAgeSeconds: corsConfiguration.MaxAge as number | undefined,
        };
      }
    }
    const byRef = (ref: string, type: string) =>
      live.find((located) => located.resource.Type === type && physical.get(located.logicalId)?.ref === ref);
    for (const located of ofType("AWS::ApiGatewayV2::Route")) {
      const route = props(located);
      // "$default" catches every request no other route matches.
      const [method, path] = route.RouteKey === "$default" ? ["ANY", "$default"] : String(route.RouteKey).split(" ");
      const integration = byRef(
        String(route.Target ?? "").replace(/^integrations\//, ""),
        "AWS::ApiGatewayV2::Integration",
      );
      if (!integration || !method || !path) continue;
      const target = host(String(props(integration).IntegrationUri));
      let jwtAudience: string[] | undefined;
      if (route.AuthorizationType === "JWT") {
        const authorizer = byRef(String(route.AuthorizerId), "AWS::ApiGatewayV2::Authorizer");
        const jwt = authorizer
          ? (props(authorizer).JwtConfiguration as { Audience?: string[] } | undefined)
          : undefined;
        jwtAudience = jwt?.Audience ?? [];
      }
      routes.push({ method, path, target, ...(jwtAudience ? { jwtAudience } : {}) });
    }
    this.api = new HttpApi(routes, {
      ...(cors ? { cors } : {}),
      localHandlers: [this.metricsHandler, ...(this.options.localHandlers ?? [])],
      ...(this.options.verifyJwt ? { verifyJwt: this.options.verifyJwt } : {}),
    });
    this.apiUrl = await this.api.listen(this.options.apiPort);
    for (const route of routes) {
      this.log(
        `route ${route.method} ${route.path} → ${route.target.definition.name}${route.jwtAudience ? " (JWT)" : ""}`,
      );
    }
  }

  /** GET /metrics: the Prometheus exposition, for any Prometheus to scrape. */
  private readonly metricsHandler: LocalHandler = async (request, response) => {
    if ((request.url ?? "").split("?")[0] !== "/metrics") return false;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("Method Not Allowed");
      return true;
    }
    let body: string;
    try {
      body = await this.metrics();
    } catch (error) {
      response.writeHead(503, { "content-type": "text/plain" }).end(`metrics unavailable: ${(error as Error).message}`);
      return true;
    }
    response.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" });
    response.end(request.method === "HEAD" ? undefined : body);
    return true;
  };

  /** Logical ids of the template's functions whose resource matches (e.g. by its metadata). */
  functionIds(matches: (resource: Resource) => boolean = () => true): string[] {
    return [...this.functionsByLogicalId.values()]
      .filter(({ resource }) => matches(resource))
      .map(({ logicalId }) => logicalId);
  }

  /**
   * Invokes a template function once (looked up by the start of its logical id, e.g.
   * "OperationsRedrive") and returns its result, as `aws lambda invoke` would.
   */
  async invoke(logicalIdPrefix: string, event: unknown) {
    const matches = [...this.functionsByLogicalId.keys()].filter((id) => id.startsWith(logicalIdPrefix));
    if (matches.length !== 1) {
      throw new Error(
        `${matches.length} functions match ${logicalIdPrefix}: ${[...this.functionsByLogicalId.keys()].join(", ")}`,
      );
    }
    const located = this.functionsByLogicalId.get(matches[0] as string) as Located;
    const host = this.hostFor?.(this.names.get(located.logicalId) ?? located.logicalId);
    if (!host) throw new Error("the runtime is not wired");
    return host.invoke(event);
  }

  /** How a function runs locally: its bundled asset, its template settings, local endpoints on top. */
  private functionDefinition(
    located: Located,
    properties: Record<string, unknown>,
    answersRequests: boolean,
  ): FunctionDefinition {
    const assetPath = located.resource.Metadata?.["aws:asset:path"];
    if (typeof assetPath !== "string") throw new Error(`${located.logicalId} has no code asset in the cloud assembly`);
    const assetDir = join(this.options.cdkOut, assetPath);
    const [file, exportName] = String(properties.Handler ?? "index.handler").split(/\.(?=[^.]+$)/);
    const moduleFile = readdirSync(assetDir).find((name) => name.replace(/\.(mjs|cjs|js)$/, "") === file);
    if (!moduleFile) throw new Error(`${located.logicalId}: no ${file}.mjs/.js in ${assetDir}`);
    this.linkNodeModules();
    const reserved = properties.ReservedConcurrentExecutions;
    const maxLocal = answersRequests
      ? (this.options.maxRequestConcurrency ?? this.options.maxConcurrency ?? 2)
      : (this.options.maxConcurrency ?? 2);
    const concurrency = Math.max(1, Math.min(maxLocal, reserved === undefined ? maxLocal : Number(reserved)));
    const environment: Record<string, string> = {
      ...((properties.Environment as { Variables?: Record<string, string> } | undefined)?.Variables ?? {}),
      // References to AWS endpoints become the local servers'.
      ...this.options.stackEnv,
      NODE_OPTIONS: "--enable-source-maps",
      ...this.options.functionEnv?.({
        logicalId: located.logicalId,
        metadata: (located.resource.Metadata ?? {}) as Record<string, unknown>,
        concurrency,
        lambdaEndpoint: this.lambdaEndpoint,
      }),
    };
    const name = this.names.get(located.logicalId) ?? located.logicalId;
    return {
      name,
      modulePath: join(assetDir, moduleFile),
      exportName: exportName ?? "handler",
      environment,
      timeoutSeconds: Number(properties.Timeout ?? 3),
      memoryMb: Number(properties.MemorySize ?? 128),
      concurrency,
      niceness: answersRequests ? 0 : (this.options.backgroundNiceness ?? 0),
    };
  }

  /**
   * Bundles may leave packages external (native ones above all): in AWS they come from a layer,
   * locally from `nodeModules`, which Node finds from the asset folders through this link.
   */
  private linkNodeModules(): void {
    const { nodeModules, cdkOut } = this.options;
    const link = join(cdkOut, "node_modules");
    if (nodeModules && !existsSync(link)) symlinkSync(relative(cdkOut, nodeModules), link, "dir");
  }

  /** The S3 on-failure destination: the failed batch record as one object, keyed as Lambda keys it. */
  private failureDestination(arn: string, mappingId: string): FailureDestination {
    const bucket = arn.replace(/^arn:aws:s3:::/, "");
    if (bucket === arn)
      throw new Error(`${mappingId}: on-failure destination ${arn} is not an S3 bucket; only S3 is emulated`);
    return async (record, partitionKey) => {
      const now = new Date(record.timestamp);
      const day = now.toISOString().slice(0, 10).replaceAll("-", "/");
      const key = `aws/lambda/${mappingId}/${partitionKey}/${day}/${now.toISOString().replace(/[:]/g, ".")}-${record.requestContext.requestId}`;
      await this.targets.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(record),
          ContentType: "application/json",
        }),
      );
    };
  }

  private async partitionCount(topics: string[]): Promise<number> {
    const metadata = await this.targets.kafkaAdmin.fetchTopicMetadata({ topics });
    return metadata.topics.reduce((sum, topic) => sum + topic.partitions.length, 0);
  }
}

interface Schedule {
  stop(): void;
  /** The run in progress, if any. */
  running: Promise<void>;
}

/** rate(N unit) of an EventBridge schedule expression, in milliseconds; undefined for anything else. */
export function ratePeriodMs(expression: string): number | undefined {
  const match = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!match) return undefined;
  const unit = match[2]?.startsWith("minute") ? 60_000 : match[2]?.startsWith("hour") ? 3_600_000 : 86_400_000;
  return Number(match[1]) * unit;
}

/**
 * Invokes a function every `periodMs` with EventBridge's scheduled event, as a rule does (first
 * run one period after start). A run still going when the next is due is not overlapped.
 */
function startSchedule(
  target: FunctionHost,
  periodMs: number,
  ruleArn: string,
  where: { region: string; accountId: string },
  log: (line: string) => void,
): Schedule {
  const schedule: Schedule = { stop: () => {}, running: Promise.resolve() };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const event = {
      version: "0",
      id: randomUUID(),
      "detail-type": "Scheduled Event",
      source: "aws.events",
      account: where.accountId,
      time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      region: where.region,
      resources: [ruleArn],
      detail: {},
    };
    schedule.running = target
      .invoke(event)
      .then((result) => {
        if (!result.ok) log(`[schedule] ${target.definition.name} failed: ${result.error.errorMessage}`);
      })
      .finally(() => {
        busy = false;
      });
  }, periodMs);
  timer.unref();
  schedule.stop = () => clearInterval(timer);
  return schedule;
}
