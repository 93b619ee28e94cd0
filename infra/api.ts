import { Annotations, Duration, RemovalPolicy } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigateway";
import * as apigwv2 from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { FunctionName } from "../shared/adapters/config.ts";
import { LOCAL_JWT_ISSUER } from "./config.ts";
import { environmentOf, nodeFunction, toId } from "./lambda-defaults.ts";

/**
 * The routes of the HTTP API: method, path, function (the operations of shared/api/openapi.ts).
 * All but /health and /openapi.json need a valid JWT, which the functions verify themselves.
 */
export const ROUTES: { method: apigwv2.HttpMethod; path: string; fn: FunctionName | "health" }[] = [
  { method: apigwv2.HttpMethod.POST, path: "/uploads", fn: "upload-url" },
  { method: apigwv2.HttpMethod.GET, path: "/jobs", fn: "job-status" },
  { method: apigwv2.HttpMethod.GET, path: "/jobs/{id}", fn: "job-status" },
  { method: apigwv2.HttpMethod.POST, path: "/search", fn: "search" },
  { method: apigwv2.HttpMethod.DELETE, path: "/documents/{id}", fn: "delete-document" },
  // A collection's indexes and its migration to another embedding model.
  { method: apigwv2.HttpMethod.GET, path: "/collections/{name}", fn: "collections" },
  { method: apigwv2.HttpMethod.POST, path: "/collections/{name}/migrations", fn: "collections" },
  { method: apigwv2.HttpMethod.GET, path: "/collections/{name}/migrations/{id}", fn: "collections" },
  { method: apigwv2.HttpMethod.POST, path: "/collections/{name}/migrations/{id}/cutover", fn: "collections" },
  { method: apigwv2.HttpMethod.POST, path: "/collections/{name}/migrations/{id}/rollback", fn: "collections" },
  { method: apigwv2.HttpMethod.DELETE, path: "/collections/{name}/indexes/{index}", fn: "collections" },
  // The caller tenant's dead letters (replays go through the redrive function, one at a time).
  { method: apigwv2.HttpMethod.GET, path: "/dead-letters", fn: "dead-letter-api" },
  { method: apigwv2.HttpMethod.POST, path: "/dead-letters/redrive", fn: "dead-letter-api" },
  { method: apigwv2.HttpMethod.GET, path: "/health", fn: "health" },
  { method: apigwv2.HttpMethod.GET, path: "/openapi.json", fn: "api-meta" },
];

export interface ApiProps {
  /** The deployment stage: part of the API's name, the health function's STAGE. */
  readonly stage: string;
  /**
   * The JWT issuer whose tokens the functions behind every route but GET /health and
   * GET /openapi.json accept (they discover its keys through its OpenID configuration).
   * @default LOCAL_JWT_ISSUER (the local runtime's stand-in: a deployed API would reject every token)
   */
  readonly jwtIssuer?: string;
  /**
   * Audiences a token must name (one of).
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
 * The HTTP API (API Gateway v2): the routes, a $default route for everything else (404/405
 * problems), a default-stage throttle, and JSON access logs. The stages that serve routes attach
 * their functions with `addRoutes`; GET /health, GET /openapi.json and $default are served here.
 *
 * No JWT authorizer: an HTTP API's JWT authorizer answers a refused token with a fixed
 * `401 {"message":"Unauthorized"}` that cannot be shaped (HTTP APIs have no gateway responses,
 * and response parameter mapping applies to integration responses only). So the functions verify
 * the bearer token themselves, as the authorizer would (issuer's keys, issuer, audience, expiry;
 * shared/adapters/bearer-auth.ts), with the settings of `tokenVerification`, and a refused token
 * gets the same RFC 9457 problem as every other error. The price: a request without a valid token
 * still invokes a function, bounded by the stage throttle.
 */
export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly healthFunction: lambda.IFunction;
  /** GET /openapi.json and the $default route (functions/api-meta). */
  readonly metaFunction: nodejs.NodejsFunction;
  /**
   * What a function behind a route needs to verify the caller's bearer token like a JWT authorizer
   * would (with its TENANT_CLAIM): spread into its `environmentOf`.
   */
  readonly tokenVerification: { readonly JWT_ISSUER: string; readonly JWT_AUDIENCE: string };

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
    this.httpApi = new apigwv2.HttpApi(this, "HttpApi", {
      apiName: `datadistiller-${props.stage}`,
      description: "DataDistiller: uploads, jobs, search, dead letters",
      createDefaultStage: false,
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
          }),
        ),
      },
    });

    // GET /health: no token, no dependency: a liveness probe for load balancers and humans.
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

    // GET /openapi.json and every request no route matches: the API's description, 404s and 405s.
    this.metaFunction = nodeFunction(this, "ApiMeta", {
      entry: "functions/api-meta/handler.ts",
      description: "GET /openapi.json; $default: 404 / 405 problems for requests no route matches",
      serviceName: "api-meta",
      memorySize: 256,
      timeout: Duration.seconds(5),
      stage: props.stage,
      environment: environmentOf("api-meta", {}),
      logRetentionDays,
      removalPolicy,
    });
    this.addRoutes("api-meta", this.metaFunction);
    new apigwv2.HttpRoute(this, "DefaultRoute", {
      httpApi: this.httpApi,
      routeKey: apigwv2.HttpRouteKey.DEFAULT,
      integration: this.integration("api-meta", this.metaFunction),
    });

    this.tokenVerification = {
      JWT_ISSUER: jwtIssuer,
      JWT_AUDIENCE: (props.jwtAudience ?? ["datadistiller"]).join(","),
    };
  }

  /** Serves the routes of ROUTES that name `fn` with this function (a Lambda proxy integration each). */
  addRoutes(fn: FunctionName | "health", target: lambda.IFunction): apigwv2.HttpRoute[] {
    const routes = ROUTES.filter((route) => route.fn === fn);
    if (routes.length === 0) throw new Error(`no HTTP route is served by ${fn}`);
    return routes.flatMap((route) =>
      this.httpApi.addRoutes({ path: route.path, methods: [route.method], integration: this.integration(fn, target) }),
    );
  }

  private integration(fn: FunctionName | "health", target: lambda.IFunction): HttpLambdaIntegration {
    return new HttpLambdaIntegration(`${toId(fn)}Integration`, target, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
    });
  }

  get url(): string {
    return this.stage.url;
  }
}
