/**
 * CloudFormation custom resource (through custom_resources.Provider) that creates the pipeline's
 * Kafka topics on the MSK cluster, and grows their partition counts when the configuration does.
 *
 * Properties: BootstrapBrokers ("host:port,…"), Region, Topics ([{ Name, Partitions }]).
 * Authentication: IAM (SASL/OAUTHBEARER over TLS, token from aws-msk-iam-sasl-signer-js) unless
 * KAFKA_SASL_MECHANISM=none (a plaintext local broker).
 *
 * Create/Update: creates missing topics, adds partitions where fewer exist than configured, and
 * fails (rolling the stack back) if asked for fewer partitions than a topic has: Kafka cannot
 * remove partitions. Delete: does nothing; the topics go with the cluster, and a resource replacement
 * must not delete the data of the topics it replaces.
 */
import type { CloudFormationCustomResourceEvent } from "aws-lambda";
import { generateAuthToken } from "aws-msk-iam-sasl-signer-js";
import { type Admin, Kafka, logLevel } from "kafkajs";

export interface TopicSpec {
  name: string;
  partitions: number;
}

export interface TopicPlan {
  create: TopicSpec[];
  grow: TopicSpec[];
  unchanged: string[];
  errors: string[];
}

/** What to do, given the topics that exist (name → partition count) and the ones wanted. */
export function planTopics(existing: ReadonlyMap<string, number>, wanted: readonly TopicSpec[]): TopicPlan {
  const plan: TopicPlan = { create: [], grow: [], unchanged: [], errors: [] };
  for (const topic of wanted) {
    const current = existing.get(topic.name);
    if (current === undefined) plan.create.push(topic);
    else if (current < topic.partitions) plan.grow.push(topic);
    else if (current > topic.partitions) {
      plan.errors.push(
        `topic ${topic.name} has ${current} partitions; Kafka cannot reduce them to ${topic.partitions} ` +
          "(configure at least the current count, or recreate the topic)",
      );
    } else plan.unchanged.push(topic.name);
  }
  return plan;
}

/** Parses the Topics property (CloudFormation passes numbers as strings). */
export function parseTopics(value: unknown): TopicSpec[] {
  if (!Array.isArray(value) || value.length === 0) throw new Error("Topics must be a non-empty list");
  return value.map((item: unknown) => {
    const { Name, Partitions } = (item ?? {}) as { Name?: unknown; Partitions?: unknown };
    const partitions = Number(Partitions);
    if (typeof Name !== "string" || !/^[A-Za-z0-9._-]{1,249}$/.test(Name))
      throw new Error(`invalid topic name: ${String(Name)}`);
    if (!Number.isInteger(partitions) || partitions < 1)
      throw new Error(`invalid partition count for ${Name}: ${String(Partitions)}`);
    return { name: Name, partitions };
  });
}

function kafkaClient(brokers: string, region: string): Kafka {
  const iamAuth = (process.env.KAFKA_SASL_MECHANISM ?? "aws-iam") === "aws-iam";
  return new Kafka({
    clientId: "datadistiller-topics",
    brokers: brokers
      .split(",")
      .map((broker) => broker.trim())
      .filter(Boolean),
    logLevel: logLevel.WARN,
    connectionTimeout: 10_000,
    requestTimeout: 30_000,
    retry: { retries: 8, initialRetryTime: 500 },
    ...(iamAuth
      ? {
          ssl: true,
          sasl: {
            mechanism: "oauthbearer" as const,
            oauthBearerProvider: async () => ({ value: (await generateAuthToken({ region })).token }),
          },
        }
      : {}),
  });
}

async function applyPlan(admin: Admin, wanted: TopicSpec[]): Promise<TopicPlan> {
  const names = new Set(await admin.listTopics());
  const existing = new Map<string, number>();
  const present = wanted.filter((topic) => names.has(topic.name)).map((topic) => topic.name);
  if (present.length > 0) {
    const metadata = await admin.fetchTopicMetadata({ topics: present });
    for (const topic of metadata.topics) existing.set(topic.name, topic.partitions.length);
  }
  const plan = planTopics(existing, wanted);
  if (plan.errors.length > 0) throw new Error(plan.errors.join("; "));
  if (plan.create.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      // Replication factor: the cluster's default (MSK Serverless fixes it at 3; provisioned
      // clusters default to 3 with three or more brokers, else 2).
      topics: plan.create.map((topic) => ({ topic: topic.name, numPartitions: topic.partitions })),
    });
  }
  if (plan.grow.length > 0) {
    await admin.createPartitions({
      topicPartitions: plan.grow.map((topic) => ({ topic: topic.name, count: topic.partitions })),
    });
  }
  return plan;
}

export async function handler(
  event: CloudFormationCustomResourceEvent,
): Promise<{ PhysicalResourceId: string; Data?: Record<string, string> }> {
  const physicalResourceId =
    "PhysicalResourceId" in event ? event.PhysicalResourceId : `${event.LogicalResourceId}-kafka-topics`;
  if (event.RequestType === "Delete") return { PhysicalResourceId: physicalResourceId };

  const properties = event.ResourceProperties as Record<string, unknown>;
  const brokers = String(properties.BootstrapBrokers ?? "");
  if (!brokers) throw new Error("BootstrapBrokers is empty");
  const region = String(properties.Region ?? process.env.AWS_REGION ?? "");
  const wanted = parseTopics(properties.Topics);

  const admin = kafkaClient(brokers, region).admin();
  await admin.connect();
  try {
    const plan = await applyPlan(admin, wanted);
    console.log(
      JSON.stringify({
        message: "kafka topics reconciled",
        created: plan.create,
        grown: plan.grow,
        unchanged: plan.unchanged,
      }),
    );
    return { PhysicalResourceId: physicalResourceId, Data: { Topics: wanted.map((topic) => topic.name).join(",") } };
  } finally {
    await admin.disconnect();
  }
}
