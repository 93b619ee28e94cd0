import { Annotations, Duration, type RemovalPolicy } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigateway";
import * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { type DataDistillerConfig, LOCAL_JWT_ISSUER } from "./config.ts";
import { nodeFunction, toId } from "./lambda-defaults.ts";
import type { FunctionName } from "./pipeline.ts";

/**
 * The routes of the HTTP API: method, path, function (the operations of shared/api/openapi.ts).
 * All but /health and /openapi.json need a valid JWT, which the functions verify themselves.
 */
export const ROUTES: { method: apigwv2.HttpMethod; path: string; fn: FunctionName | "health" | "api-meta" }[] = [
  { method: apigwv2.HttpMethod.POST, path: "/uploads", fn: "upload-url" },
  { method: apigwv2.HttpMethod.GET, path: "/jobs", fn: "job-status" },
  { method: apigwv2.HttpMethod.GET, path: "/jobs/{id}", fn: "job-status" },
  { method: apigwv2.HttpMethod.POST, path: "/search", fn: "search" },
  { method: apigwv2.HttpMethod.DELETE, path: "/documents/{id}", fn: "delete-document" },
  // The caller tenant's dead letters (replays go through the redrive function, one at a time).
  { method: apigwv2.HttpMethod.GET, path: "/dead-letters", fn: "dead-letter-api" },
  { method: apigwv2.HttpMethod.POST, path: "/dead-letters/redrive", fn: "dead-letter-api" },
  { method: apigwv2.HttpMethod.GET, path: "/health", fn: "health" },
  { method: apigwv2.HttpMethod.GET, path: "/openapi.json", fn: "api-meta" },
];

export interface ApiProps {
  config: DataDistillerConfig;
  functions: Record<FunctionName, lambda.IFunction>;
  removalPolicy: RemovalPolicy;
}

/**
 * The HTTP API (API Gateway v2): the routes, a $default route for everything else (404/405), a
 * default-stage throttle, and JSON access logs.
 *
 * No JWT authorizer: an HTTP API's JWT authorizer answers a refused token with a fixed
 * `401 {"message":"Unauthorized"}` that cannot be shaped (HTTP APIs have no gateway responses,
 * and response parameter mapping applies to integration responses only). So the functions verify
 * the bearer token themselves, as the authorizer would (issuer's keys, issuer, audience, expiry;
 * shared/adapters/bearer-auth.ts), and a refused token gets the same RFC 9457 problem as every
 * other error. The price: a request without a valid token still invokes a function, bounded by the
 * stage throttle.
 */
export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly healthFunction: lambda.IFunction;
  readonly metaFunction: lambda.IFunction;

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
    this.httpApi = new apigwv2.HttpApi(this, "HttpApi", {
      apiName: `datadistiller-${config.stage}`,
      description: "DataDistiller: uploads, jobs, search, dead letters",
      createDefaultStage: false,
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

    // GET /openapi.json and every request no route matches: the API's description, 404s and 405s.
    this.metaFunction = nodeFunction(this, "ApiMeta", {
      entry: "functions/api-meta/handler.ts",
      description: "GET /openapi.json; $default: 404 / 405 problems for requests no route matches",
      serviceName: "api-meta",
      memorySize: 256,
      timeout: Duration.seconds(5),
      environment: { STAGE: config.stage },
      logRetentionDays: config.logRetentionDays,
      removalPolicy: props.removalPolicy,
    });

    const integrations = new Map<string, HttpLambdaIntegration>();
    const integration = (fn: (typeof ROUTES)[number]["fn"]) => {
      const target =
        fn === "health" ? this.healthFunction : fn === "api-meta" ? this.metaFunction : props.functions[fn];
      const created =
        integrations.get(fn) ??
        new HttpLambdaIntegration(`${toId(fn)}Integration`, target, {
          payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
        });
      integrations.set(fn, created);
      return created;
    };
    for (const route of ROUTES) {
      this.httpApi.addRoutes({ path: route.path, methods: [route.method], integration: integration(route.fn) });
    }
    new apigwv2.HttpRoute(this, "DefaultRoute", {
      httpApi: this.httpApi,
      routeKey: apigwv2.HttpRouteKey.DEFAULT,
      integration: integration("api-meta"),
    });
  }

  get url(): string {
    return this.stage.url;
  }
}
