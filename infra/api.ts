import { Annotations, Duration, RemovalPolicy } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigateway";
import * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import { HttpJwtAuthorizer } from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { FunctionName } from "../shared/adapters/config.ts";
import { LOCAL_JWT_ISSUER } from "./config.ts";
import { nodeFunction, toId } from "./lambda-defaults.ts";

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
  /** The deployment stage: part of the API's name, the health function's STAGE. */
  readonly stage: string;
  /**
   * The JWT issuer every route but GET /health trusts.
   * @default LOCAL_JWT_ISSUER (the local runtime's stand-in: a deployed API would reject every token)
   */
  readonly jwtIssuer?: string;
  /**
   * Audiences the JWT authorizer accepts.
   * @default ["datadistiller"]
   */
  readonly jwtAudience?: string[];
  /**
   * Browser origins allowed by CORS.
   * @default ["*"]
   */
  readonly corsAllowedOrigins?: string[];
  /**
   * Default stage throttle: steady requests per second and burst.
   * @default { rateLimit: 50, burstLimit: 100 }
   */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
  /**
   * Days the access logs (and the health function's logs) are kept.
   * @default 30
   */
  readonly logRetentionDays?: number;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The HTTP API (API Gateway v2): JWT authorizer on every route except GET /health (the tenant is
 * a claim of the token, read by the functions from the request context), a default-stage
 * throttle, and JSON access logs. The stages that serve routes attach their functions with
 * `addRoutes`; GET /health is served here.
 */
export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly healthFunction: lambda.IFunction;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const jwtIssuer = props.jwtIssuer ?? LOCAL_JWT_ISSUER;
    const allowOrigins = props.corsAllowedOrigins ?? ["*"];
    const logRetentionDays = props.logRetentionDays ?? 30;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    if (jwtIssuer === LOCAL_JWT_ISSUER) {
      Annotations.of(this).addWarningV2(
        "datadistiller:localJwtIssuer",
        `jwtIssuer is the local runtime's stand-in issuer (${LOCAL_JWT_ISSUER}): fine locally, but a deployed API would reject every token. ` +
          "Deploy with -c jwtIssuer=<your issuer URL> -c jwtAudience=<audience>.",
      );
    }
    const authorizer = new HttpJwtAuthorizer("JwtAuthorizer", jwtIssuer, {
      authorizerName: "jwt",
      jwtAudience: props.jwtAudience ?? ["datadistiller"],
      identitySource: ["$request.header.Authorization"],
    });

    this.httpApi = new apigwv2.HttpApi(this, "HttpApi", {
      apiName: `datadistiller-${props.stage}`,
      description: "DataDistiller: uploads, jobs, search, dead letters",
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
      corsPreflight: {
        allowOrigins,
        allowMethods: [apigwv2.CorsHttpMethod.GET, apigwv2.CorsHttpMethod.POST, apigwv2.CorsHttpMethod.DELETE],
        allowHeaders: ["authorization", "content-type"],
        maxAge: Duration.hours(1),
      },
    });

    this.accessLogs = new logs.LogGroup(this, "AccessLogs", {
      retention: logRetentionDays as logs.RetentionDays,
      removalPolicy,
    });
    this.stage = new apigwv2.HttpStage(this, "DefaultStage", {
      httpApi: this.httpApi,
      stageName: "$default",
      autoDeploy: true,
      // Account-level limits are shared by every API in the region: cap this one explicitly.
      throttle: props.throttle ?? { rateLimit: 50, burstLimit: 100 },
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
      stage: props.stage,
      logRetentionDays,
      removalPolicy,
    });
    this.addRoutes("health", this.healthFunction);
  }

  /** Serves the routes of ROUTES that name `fn` with this function (a Lambda proxy integration each). */
  addRoutes(fn: FunctionName | "health", target: lambda.IFunction): apigwv2.HttpRoute[] {
    const routes = ROUTES.filter((route) => route.fn === fn);
    if (routes.length === 0) throw new Error(`no HTTP route is served by ${fn}`);
    return routes.flatMap((route) =>
      this.httpApi.addRoutes({
        path: route.path,
        methods: [route.method],
        integration: new HttpLambdaIntegration(`${toId(route.fn)}Integration`, target, {
          payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
        }),
        ...(route.fn === "health" ? { authorizer: new apigwv2.HttpNoneAuthorizer() } : {}),
      }),
    );
  }

  get url(): string {
    return this.stage.url;
  }
}
