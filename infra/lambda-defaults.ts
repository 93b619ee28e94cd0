import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Duration, type RemovalPolicy, Size } from "aws-cdk-lib";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";

/** The repository root (this file lives in <root>/infra). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** CloudWatch metrics namespace of the Powertools metrics every function emits. */
export const METRICS_NAMESPACE = "DataDistiller";

/**
 * Node.js 24 where this aws-cdk-lib knows it (Lambda's newest LTS runtime, Amazon Linux 2023),
 * else 22. Both are N-API stable for the native modules of the layer.
 */
export const RUNTIME: lambda.Runtime =
  (lambda.Runtime as unknown as Record<string, lambda.Runtime | undefined>).NODEJS_24_X ?? lambda.Runtime.NODEJS_22_X;

/** Modules provided by the native layer (/opt/nodejs/node_modules): never bundled. */
/**
 * Packages the functions take from the native layer instead of their bundle: the two native
 * bindings, and pdf-parse, whose pdf.js loads its worker and canvas by path at run time.
 */
export const NATIVE_MODULES = ["onnxruntime-node", "faiss-node", "pdf-parse"];

export interface NodeFunctionOptions {
  /** Entry file, relative to the repository root. */
  entry: string;
  description: string;
  memorySize: number;
  timeout: Duration;
  environment?: Record<string, string>;
  /** POWERTOOLS_SERVICE_NAME. */
  serviceName: string;
  /** Leave onnxruntime-node / faiss-node out of the bundle (they come from the native layer). */
  usesNativeLayer?: boolean;
  layers?: lambda.ILayerVersion[];
  vpc?: ec2.IVpc;
  vpcSubnets?: ec2.SubnetSelection;
  securityGroups?: ec2.ISecurityGroup[];
  reservedConcurrentExecutions?: number;
  ephemeralStorageMiB?: number;
  logRetentionDays: number;
  removalPolicy: RemovalPolicy;
}

/**
 * A TypeScript handler bundled by esbuild on this machine (no Docker), as an ES module.
 *
 * The AWS SDK v3 is bundled rather than taken from the runtime: the version the code was tested
 * with is the version that runs (the runtime's copy changes under us with runtime updates), tree
 * shaking keeps it small, and locally the same code runs against node_modules.
 */
export function nodeFunction(scope: Construct, id: string, options: NodeFunctionOptions): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: options.logRetentionDays as logs.RetentionDays,
    removalPolicy: options.removalPolicy,
  });
  // An execution role of our own instead of AWSLambdaBasicExecutionRole (logs:* on every log
  // group) and AWSLambdaVPCAccessExecutionRole: each function may write only its own log group,
  // and the callers add exactly what the function uses.
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    description: `Execution role of ${options.serviceName}`,
  });
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: "OwnLogGroup",
      actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
      resources: [logGroup.logGroupArn],
    }),
  );
  if (options.vpc) {
    // What AWSLambdaVPCAccessExecutionRole grants: Lambda manages the function's network
    // interfaces with the execution role. EC2 offers no resource-level scoping for these calls
    // that Lambda's own validation accepts, hence "*".
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: "VpcNetworkInterfaces",
        actions: [
          "ec2:CreateNetworkInterface",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSubnets",
          "ec2:DeleteNetworkInterface",
          "ec2:AssignPrivateIpAddresses",
          "ec2:UnassignPrivateIpAddresses",
        ],
        resources: ["*"],
      }),
    );
  }
  const fn = new nodejs.NodejsFunction(scope, id, {
    entry: join(REPO_ROOT, options.entry),
    handler: "handler",
    projectRoot: REPO_ROOT,
    depsLockFilePath: join(REPO_ROOT, "package-lock.json"),
    role,
    runtime: RUNTIME,
    // The native layer is built on x86_64 Linux (onnxruntime-node linux/x64, faiss from Debian).
    architecture: lambda.Architecture.X86_64,
    description: options.description,
    memorySize: options.memorySize,
    timeout: options.timeout,
    ephemeralStorageSize: options.ephemeralStorageMiB ? Size.mebibytes(options.ephemeralStorageMiB) : undefined,
    reservedConcurrentExecutions: options.reservedConcurrentExecutions,
    environment: {
      POWERTOOLS_SERVICE_NAME: options.serviceName,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      // Stack traces point at the TypeScript sources (the bundle ships a source map).
      NODE_OPTIONS: "--enable-source-maps",
      ...options.environment,
    },
    layers: options.layers,
    vpc: options.vpc,
    vpcSubnets: options.vpc ? options.vpcSubnets : undefined,
    securityGroups: options.vpc ? options.securityGroups : undefined,
    // Structured logs: Lambda's own lines and the Powertools logger's are JSON, filterable by level.
    loggingFormat: lambda.LoggingFormat.JSON,
    applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
    systemLogLevelV2: lambda.SystemLogLevel.WARN,
    logGroup,
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: "node22",
      platform: "node",
      // ESM first where a package ships both; CommonJS dependencies get a `require` via the banner.
      mainFields: ["module", "main"],
      banner:
        "import { createRequire as __ddCreateRequire } from 'node:module'; const require = __ddCreateRequire(import.meta.url);",
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      externalModules: options.usesNativeLayer ? NATIVE_MODULES : [],
      logLevel: nodejs.LogLevel.WARNING,
    },
  });
  // Where the source lives: lets the local runtime run the TypeScript directly from the template.
  (fn.node.defaultChild as lambda.CfnFunction).addMetadata("DataDistiller", {
    entry: options.entry,
    handler: "handler",
    service: options.serviceName,
  });
  return fn;
}

/** "upload-url" → "UploadUrl" (construct ids and logical ids). */
export function toId(name: string): string {
  return name
    .split(/[^a-zA-Z0-9]+/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}
