import { Annotations, Duration, type RemovalPolicy } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigateway";
import * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import { HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { type DataDistillerConfig, LOCAL_JWT_ISSUER } from "./config.ts";
import { nodeFunction, toId } from "./lambda-defaults.ts";
import type { FunctionName } from "./pipeline.ts";

/** The routes of the HTTP API: method, path, function; all but /health need a valid JWT. */
export const ROUTES: { method: apigwv2.HttpMethod; path: string; fn: FunctionName | "health" }[] = [
  { method: apigwv2.HttpMethod.POST, path: "/uploads", fn: "upload-url" },
  { method: apigwv2.HttpMethod.GET, path: "/jobs", fn: "job-status" },
  { method: apigwv2.HttpMethod.GET, path: "/jobs/{id}", fn: "job-status" },
  { method: apigwv2.HttpMethod.POST, path: "/search", fn: "search" },
  { method: apigwv2.HttpMethod.DELETE, path: "/documents/{id}", fn: "delete-document" },
  // The caller tenant's dead letters; the redrive function serves both (one replay at a time).
  { method: apigwv2.HttpMethod.GET, path: "/dead-letters", fn: "redrive" },
  { method: apigwv2.HttpMethod.POST, path: "/dead-letters/redrive", fn: "redrive" },
  { method: apigwv2.HttpMethod.GET, path: "/health", fn: "health" },
];

export interface ApiProps {
  config: DataDistillerConfig;
  functions: Record<FunctionName, lambda.IFunction>;
  removalPolicy: RemovalPolicy;
}

/**
 * The HTTP API (API Gateway v2): JWT authorizer on every route except GET /health (the tenant is
 * a claim of the token, read by the functions from the request context), a default-stage
 * throttle, and JSON access logs.
 */
export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly healthFunction: lambda.IFunction;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { config } = props;

    if (config.jwtIssuer === LOCAL_JWT_ISSUER) {
      Annotations.of(this).addWarningV2(
        "datadistiller:localJwtIssuer",
        `jwtIssuer is the local runtime's stand-in issuer (${LOCAL_JWT_ISSUER}): fine locally, but a deployed API would reject every token. ` +
          "Deploy with -c jwtIssuer=<your issuer URL> -c jwtAudience=<audience>.",
      );
    }
    const authorizer = new HttpJwtAuthorizer("JwtAuthorizer", config.jwtIssuer, {
      authorizerName: "jwt",
      jwtAudience: config.jwtAudience,
      identitySource: ["$request.header.Authorization"],
    });

    this.httpApi = new apigwv2.HttpApi(this, "HttpApi", {
      apiName: `datadistiller-${config.stage}`,
      description: "DataDistiller: uploads, jobs, search, dead letters",
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
      corsPreflight: {
        allowOrigins: config.corsAllowedOrigins,
        allowMethods: [apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST, apigwv2.CorsHttpMethod.DELETE],
        allowHeaders: ["authorization", "content-type"],
        maxAge: Duration.hours(1),
      },
    });

    this.accessLogs = new logs.LogGroup(this, "AccessLogs", {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.stage = new apigwv2.HttpStage(this, "DefaultStage", {
      httpApi: this.httpApi,
      stageName: "$default",
      autoDeploy: true,
      // Account-level limits are shared by every API in the region: cap this one explicitly.
      throttle: { rateLimit: config.apiThrottleRateLimit, burstLimit: config.apiThrottleBurstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            requestTime: "$context.requestTime",
            routeKey: "$context.routeKey",
            status: "$context.status",
            protocol: "$context.protocol",
            responseLength: "$context.responseLength",
            responseLatency: "$context.responseLatency",
            integrationLatency: "$context.integrationLatency",
            integrationError: "$context.integrationErrorMessage",
            authorizerError: "$context.authorizer.error",
            subject: "$context.authorizer.claims.sub",
          }),
        ),
      },
    });

    // GET /health: no authorizer, no dependency: a liveness probe for load balancers and humans.
    this.healthFunction = nodeFunction(this, "Health", {
      entry: "infra/health-handler.ts",
      description: "GET /health",
      serviceName: "health",
      memorySize: 128,
      timeout: Duration.seconds(3),
      environment: { STAGE: config.stage },
      logRetentionDays: config.logRetentionDays,
      removalPolicy: props.removalPolicy,
    });

    for (const route of ROUTES) {
      const target = route.fn === "health" ? this.healthFunction : props.functions[route.fn];
      this.httpApi.addRoutes({
        path: route.path,
        methods: [route.method],
        integration: new HttpLambdaIntegration(`${toId(route.fn)}Integration`, target, {
          payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
        }),
        ...(route.fn === "health" ? { authorizer: new apigwv2.HttpNoneAuthorizer() } : {}),
      });
    }
  }

  get url(): string {
    return this.stage.url;
  }
}
