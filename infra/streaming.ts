import { ArnFormat, CustomResource, Duration, Fn, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as msk from "aws-cdk-lib/aws-msk";
import * as cr from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";
import { grantStatement, nodeFunction } from "./lambda-defaults.ts";
import type { Network } from "./network.ts";

/** The pipeline's topics (names are fixed; partition counts are configuration). */
export const TOPICS = {
  documentsUploaded: "documents.uploaded",
  chunksToEmbed: "chunks.to-embed",
  chunksEmbedded: "chunks.embedded",
} as const;
export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export interface StreamingProps {
  /** The deployment stage: part of the cluster's name. */
  readonly stage: string;
  readonly network: Network;
  /**
   * MSK Serverless (pay per cluster-hour and partition-hour) or provisioned brokers.
   * @default "serverless"
   */
  readonly mskMode?: "serverless" | "provisioned";
  /**
   * Provisioned mode only: broker instance type.
   * @default "kafka.m7g.large"
   */
  readonly brokerInstanceType?: string;
  /**
   * Provisioned mode only: number of brokers (a multiple of the availability zones).
   * @default 2
   */
  readonly brokerCount?: number;
  /**
   * Provisioned mode only: EBS storage per broker, GiB.
   * @default 100
   */
  readonly brokerVolumeGiB?: number;
  /**
   * Provisioned mode only: Apache Kafka version.
   * @default "3.8.x"
   */
  readonly kafkaVersion?: string;
  /**
   * Partitions of each topic: the parallelism of the stage that consumes it.
   * @default { "documents.uploaded": 6, "chunks.to-embed": 12, "chunks.embedded": 6 }
   */
  readonly partitions?: Partial<Record<TopicName, number>>;
  /**
   * Days the broker and topic-handler logs are kept.
   * @default 30
   */
  readonly logRetentionDays?: number;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

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

  constructor(scope: Construct, id: string, props: StreamingProps) {
    super(scope, id);
    const { network } = props;
    const logRetentionDays = props.logRetentionDays ?? 30;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.clusterName = `datadistiller-${props.stage}`;
    this.partitions = {
      [TOPICS.documentsUploaded]: props.partitions?.[TOPICS.documentsUploaded] ?? 6,
      [TOPICS.chunksToEmbed]: props.partitions?.[TOPICS.chunksToEmbed] ?? 12,
      [TOPICS.chunksEmbedded]: props.partitions?.[TOPICS.chunksEmbedded] ?? 6,
    };
    const subnetIds = network.vpc.selectSubnets(network.privateSubnets).subnetIds;
    const securityGroups = [network.kafkaSecurityGroup.securityGroupId];

    if ((props.mskMode ?? "serverless") === "serverless") {
      // Serverless: IAM auth is the only auth MSK Serverless offers; TLS always on; no brokers to size.
      const cluster = new msk.CfnServerlessCluster(this, "Cluster", {
        clusterName: this.clusterName,
        clientAuthentication: { sasl: { iam: { enabled: true } } },
        vpcConfigs: [{ subnetIds, securityGroups }],
      });
      this.clusterArn = cluster.attrArn;
    } else {
      const brokerLogs = new logs.LogGroup(this, "BrokerLogs", {
        retention: logRetentionDays as logs.RetentionDays,
        removalPolicy,
      });
      const cluster = new msk.CfnCluster(this, "Cluster", {
        clusterName: this.clusterName,
        kafkaVersion: props.kafkaVersion ?? "3.8.x",
        numberOfBrokerNodes: props.brokerCount ?? 2,
        brokerNodeGroupInfo: {
          clientSubnets: subnetIds,
          instanceType: props.brokerInstanceType ?? "kafka.m7g.large",
          securityGroups,
          storageInfo: { ebsStorageInfo: { volumeSize: props.brokerVolumeGiB ?? 100 } },
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
      logRetentionDays,
      removalPolicy,
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
        retention: logRetentionDays as logs.RetentionDays,
        removalPolicy,
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
  grantProduce(grantee: iam.IGrantable, topics: TopicName[]): iam.Grant {
    return grantStatement({
      grantee,
      sid: "KafkaConnect",
      actions: ["kafka-cluster:Connect"],
      resourceArns: [this.clusterArn],
    }).combine(
      grantStatement({
        grantee,
        sid: "KafkaProduce",
        actions: ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
        resourceArns: topics.map((topic) => this.topicArn(topic)),
      }),
    );
  }

  /**
   * What a Kafka event source mapping needs in the function's execution role (Lambda polls with
   * that role): read the cluster's brokers and network, join the consumer group, read the topic.
   * The network-interface actions come with the VPC execution policy or are granted by the caller.
   */
  grantConsume(grantee: iam.IGrantable, topic: TopicName, consumerGroupId: string): iam.Grant {
    return grantStatement({
      grantee,
      sid: "KafkaEsmCluster",
      actions: [
        "kafka:DescribeClusterV2",
        "kafka:GetBootstrapBrokers",
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
      ],
      resourceArns: [this.clusterArn],
    })
      .combine(
        grantStatement({
          grantee,
          sid: "KafkaEsmTopic",
          actions: ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
          resourceArns: [this.topicArn(topic)],
        }),
      )
      .combine(
        grantStatement({
          grantee,
          sid: "KafkaEsmGroup",
          actions: ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
          resourceArns: [this.groupArn(consumerGroupId)],
        }),
      );
  }
}
