import { RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

/** MSK's port for clients that authenticate with IAM (SASL/OAUTHBEARER over TLS). */
export const MSK_IAM_PORT = 9098;

export interface NetworkProps {
  /**
   * Availability zones of the VPC (MSK needs at least two).
   * @default 2
   */
  readonly azCount?: number;
  /**
   * NAT gateways; 0 keeps the VPC fully private (gateway and interface endpoints only).
   * @default 0
   */
  readonly natGateways?: number;
  /**
   * Interface endpoints for Lambda and STS (the Kafka event source pollers' way out without a NAT).
   * @default true
   */
  readonly interfaceEndpoints?: boolean;
  /**
   * Days the VPC flow logs (rejected traffic) are kept.
   * @default 30
   */
  readonly logRetentionDays?: number;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The VPC the Kafka cluster lives in, and the Kafka clients with it.
 *
 * - Private subnets only by default (natGateways=0): nothing in the pipeline needs the internet.
 * - Gateway endpoints for S3 and DynamoDB (free): the functions' data path, and S3 is also where
 *   the Kafka event source mappings write failed batches (an S3 on-failure destination needs an
 *   S3 endpoint in the cluster's VPC).
 * - Interface endpoints for Lambda and STS: the MSK event source mapping's pollers run in the
 *   cluster's subnets and must reach both (to invoke the function and to authenticate); without a
 *   NAT gateway these endpoints are their only way out.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** Subnets of the cluster and of the VPC-attached functions. */
  readonly privateSubnets: ec2.SubnetSelection;
  /** Functions and custom resources that talk to Kafka. */
  readonly clientSecurityGroup: ec2.SecurityGroup;
  /** The MSK cluster; also used by the event source mapping pollers (AWS uses the cluster's security groups). */
  readonly kafkaSecurityGroup: ec2.SecurityGroup;

  /** Where a function that talks to Kafka runs: the private subnets, in the Kafka clients' group. */
  get kafkaClientPlacement(): { vpc: ec2.IVpc; vpcSubnets: ec2.SubnetSelection; securityGroups: ec2.ISecurityGroup[] } {
    return { vpc: this.vpc, vpcSubnets: this.privateSubnets, securityGroups: [this.clientSecurityGroup] };
  }

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    const natGateways = props.natGateways ?? 0;
    const withNat = natGateways > 0;
    const privateType = withNat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED;

    this.vpc = new ec2.Vpc(this, "Vpc", {
      ipAddresses: ec2.IpAddresses.cidr("10.40.0.0/16"),
      maxAzs: props.azCount ?? 2,
      natGateways,
      subnetConfiguration: [
        ...(withNat ? [{ name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }] : []),
        { name: "private", subnetType: privateType, cidrMask: 20 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    this.privateSubnets = { subnetType: privateType };

    // Rejected traffic only: enough to diagnose a blocked connection, a fraction of the cost of ALL.
    const flowLogGroup = new logs.LogGroup(this, "FlowLogs", {
      retention: (props.logRetentionDays ?? 30) as logs.RetentionDays,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.vpc.addFlowLog("FlowLog", {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });

    this.clientSecurityGroup = new ec2.SecurityGroup(this, "KafkaClients", {
      vpc: this.vpc,
      description: "DataDistiller functions that produce to or administer Kafka",
      // Egress stays inside the VPC's reach anyway (no NAT by default): MSK, the endpoints.
      allowAllOutbound: true,
    });
    this.kafkaSecurityGroup = new ec2.SecurityGroup(this, "Kafka", {
      vpc: this.vpc,
      description: "DataDistiller MSK cluster and its Lambda event source pollers",
      // The ESM pollers use this group: they reach the brokers, the Lambda/STS endpoints and S3.
      allowAllOutbound: true,
    });
    this.kafkaSecurityGroup.addIngressRule(
      this.clientSecurityGroup,
      ec2.Port.tcp(MSK_IAM_PORT),
      "Kafka clients (IAM auth over TLS)",
    );
    if (props.interfaceEndpoints ?? true) {
      // Reachable on 443 from the Kafka clients and the ESM pollers only (not the whole VPC CIDR).
      const endpointSecurityGroup = new ec2.SecurityGroup(this, "Endpoints", {
        vpc: this.vpc,
        description: "DataDistiller interface endpoints (Lambda, STS)",
        allowAllOutbound: false,
      });
      for (const peer of [this.clientSecurityGroup, this.kafkaSecurityGroup]) {
        endpointSecurityGroup.addIngressRule(peer, ec2.Port.tcp(443), "HTTPS to AWS APIs");
      }
      for (const [name, service] of [
        ["Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA],
        ["Sts", ec2.InterfaceVpcEndpointAwsService.STS],
      ] as const) {
        this.vpc.addInterfaceEndpoint(name, {
          service,
          subnets: this.privateSubnets,
          privateDnsEnabled: true,
          securityGroups: [endpointSecurityGroup],
          open: false,
        });
      }
    }
    // AWS requires the cluster's group to admit itself: the event source mapping's pollers get
    // network interfaces in this group and connect to the brokers from them.
    this.kafkaSecurityGroup.addIngressRule(
      this.kafkaSecurityGroup,
      ec2.Port.allTraffic(),
      "Lambda event source mapping pollers (self-referencing rule)",
    );
  }
}
