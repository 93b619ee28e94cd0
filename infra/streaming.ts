import { ArnFormat, CustomResource, Duration, Fn, type RemovalPolicy, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as msk from "aws-cdk-lib/aws-msk";
import * as cr from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";
import type { DataDistillerConfig } from "./config.ts";
import { nodeFunction } from "./lambda-defaults.ts";
import type { Network } from "./network.ts";

/** The pipeline's topics (names are fixed; partition counts are configuration). */
export const TOPICS = {
  documentsUploaded: "documents.uploaded",
  chunksToEmbed: "chunks.to-embed",
  chunksEmbedded: "chunks.embedded",
} as const;
export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

/**
 * The Kafka cluster (Amazon MSK, IAM authentication, in the private subnets), its bootstrap
 * broker string, and the topics, created at deploy time by a custom resource.
 */
export class Streaming extends Construct {
  /** The cluster's ARN (event source of the Kafka event source mappings). */
  readonly clusterArn: string;
  readonly clusterName: string;
  /** "host:9098,host:9098,…" — the SASL/IAM bootstrap brokers, resolved at deploy time. */
  readonly bootstrapBrokers: string;
  /** The custom resource that creates the topics: consumers must be created after it. */
  readonly topicsResource: CustomResource;
  readonly partitions: Record<TopicName, number>;
  readonly topicsHandler: lambda.IFunction;
  readonly topicsProvider: cr.Provider;

  constructor(
    scope: Construct,
    id: string,
    props: { config: DataDistillerConfig; network: Network; removalPolicy: RemovalPolicy },
  ) {
    super(scope, id);
    const { config, network } = props;
    this.clusterName = `datadistiller-${config.stage}`;
    this.partitions = {
      [TOPICS.documentsUploaded]: config.partitionsDocumentsUploaded,
      [TOPICS.chunksToEmbed]: config.partitionsChunksToEmbed,
      [TOPICS.chunksEmbedded]: config.partitionsChunksEmbedded,
    };
    const subnetIds = network.vpc.selectSubnets(network.privateSubnets).subnetIds;
    const securityGroups = [network.kafkaSecurityGroup.securityGroupId];

    if (config.mskMode === "serverless") {
      // Serverless: IAM auth is the only auth MSK Serverless offers; TLS always on; no brokers to size.
      const cluster = new msk.CfnServerlessCluster(this, "Cluster", {
        clusterName: this.clusterName,
        clientAuthentication: { sasl: { iam: { enabled: true } } },
        vpcConfigs: [{ subnetIds, securityGroups }],
      });
      this.clusterArn = cluster.attrArn;
    } else {
      const brokerLogs = new logs.LogGroup(this, "BrokerLogs", {
        retention: config.logRetentionDays as logs.RetentionDays,
        removalPolicy: props.removalPolicy,
      });
      const cluster = new msk.CfnCluster(this, "Cluster", {
        clusterName: this.clusterName,
        kafkaVersion: config.mskKafkaVersion,
        numberOfBrokerNodes: config.mskBrokersPerAz * config.azCount,
        brokerNodeGroupInfo: {
          clientSubnets: subnetIds,
          instanceType: config.mskBrokerInstanceType,
          securityGroups,
          storageInfo: { ebsStorageInfo: { volumeSize: config.mskBrokerVolumeGiB } },
        },
        clientAuthentication: { sasl: { iam: { enabled: true } }, unauthenticated: { enabled: false } },
        encryptionInfo: { encryptionInTransit: { clientBroker: "TLS", inCluster: true } },
        loggingInfo: { brokerLogs: { cloudWatchLogs: { enabled: true, logGroup: brokerLogs.logGroupName } } },
      });
      this.clusterArn = cluster.attrArn;
    }

    // The bootstrap string exists only once the cluster does: ask MSK for it at deploy time.
    const brokers = new cr.AwsCustomResource(this, "BootstrapBrokers", {
      resourceType: "Custom::MskBootstrapBrokers",
      onUpdate: {
        service: "Kafka",
        action: "GetBootstrapBrokers",
        parameters: { ClusterArn: this.clusterArn },
        physicalResourceId: cr.PhysicalResourceId.of(`${this.clusterName}-bootstrap-brokers`),
        outputPaths: ["BootstrapBrokerStringSaslIam"],
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ["kafka:GetBootstrapBrokers"], resources: [this.clusterArn] }),
      ]),
      installLatestAwsSdk: false,
      timeout: Duration.minutes(2),
    });
    this.bootstrapBrokers = brokers.getResponseField("BootstrapBrokerStringSaslIam");

    // Topics: a Lambda in the VPC talks to the brokers with kafkajs + the MSK IAM SASL signer.
    const topicsHandler = nodeFunction(this, "TopicsHandler", {
      entry: "infra/topics-handler.ts",
      description: "Creates the DataDistiller Kafka topics (CloudFormation custom resource)",
      memorySize: 256,
      // Topic creation takes seconds; the rest is the VPC cold start and broker metadata round trips.
      timeout: Duration.minutes(5),
      vpc: network.vpc,
      vpcSubnets: network.privateSubnets,
      securityGroups: [network.clientSecurityGroup],
      logRetentionDays: config.logRetentionDays,
      removalPolicy: props.removalPolicy,
      serviceName: "topics",
      environment: { KAFKA_SASL_MECHANISM: "aws-iam" },
    });
    this.topicsHandler = topicsHandler;
    topicsHandler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
        resources: [this.clusterArn],
      }),
    );
    topicsHandler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:AlterTopic"],
        resources: Object.values(TOPICS).map((topic) => this.topicArn(topic)),
      }),
    );
    const provider = new cr.Provider(this, "TopicsProvider", {
      onEventHandler: topicsHandler,
      logGroup: new logs.LogGroup(this, "TopicsProviderLogs", {
        retention: config.logRetentionDays as logs.RetentionDays,
        removalPolicy: props.removalPolicy,
      }),
    });
    this.topicsProvider = provider;
    this.topicsResource = new CustomResource(this, "Topics", {
      serviceToken: provider.serviceToken,
      resourceType: "Custom::KafkaTopics",
      properties: {
        BootstrapBrokers: this.bootstrapBrokers,
        Region: Stack.of(this).region,
        Topics: Object.entries(this.partitions).map(([name, partitions]) => ({ Name: name, Partitions: partitions })),
      },
    });
    // The brokers must be reachable from the handler's subnets before it runs.
    this.topicsResource.node.addDependency(network.vpc);
  }

  /** `arn:…:kafka:…:topic/<cluster name>/<cluster uuid>/<topic>` (IAM resource of a topic). */
  topicArn(topic: string): string {
    return this.clusterScopedArn("topic", topic);
  }

  /** `arn:…:kafka:…:group/<cluster name>/<cluster uuid>/<group>` (IAM resource of a consumer group). */
  groupArn(group: string): string {
    return this.clusterScopedArn("group", group);
  }

  private clusterScopedArn(resource: "topic" | "group", name: string): string {
    // Cluster ARN: arn:<partition>:kafka:<region>:<account>:cluster/<cluster name>/<cluster uuid>
    const clusterUuid = Fn.select(2, Fn.split("/", this.clusterArn));
    return Stack.of(this).formatArn({
      service: "kafka",
      resource,
      resourceName: `${this.clusterName}/${clusterUuid}/${name}`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** Lets a function produce to the given topics (IAM access control of MSK). */
  grantProduce(fn: lambda.IFunction, topics: TopicName[]): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "KafkaConnect",
        actions: ["kafka-cluster:Connect"],
        resources: [this.clusterArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "KafkaProduce",
        actions: ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
        resources: topics.map((topic) => this.topicArn(topic)),
      }),
    );
  }

  /**
   * What a Kafka event source mapping needs in the function's execution role (Lambda polls with
   * that role): read the cluster's brokers and network, join the consumer group, read the topic.
   * The network-interface actions come with the VPC execution policy or are granted by the caller.
   */
  grantConsume(fn: lambda.IFunction, topic: TopicName, consumerGroupId: string): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "KafkaEsmCluster",
        actions: [
          "kafka:DescribeClusterV2",
          "kafka:GetBootstrapBrokers",
          "kafka-cluster:Connect",
          "kafka-cluster:DescribeClusterDynamicConfiguration",
        ],
        resources: [this.clusterArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "KafkaEsmTopic",
        actions: ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
        resources: [this.topicArn(topic)],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "KafkaEsmGroup",
        actions: ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
        resources: [this.groupArn(consumerGroupId)],
      }),
    );
  }
}
