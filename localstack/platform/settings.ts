import { availableParallelism } from "node:os";
import { join } from "node:path";
import { METRIC_CATALOG, METRIC_NAMESPACE, METRICS, prometheusName } from "../../shared/domain/metric-catalog.ts";
import type { MetricDescription } from "../emulator/emf-metrics.ts";
import type { LocalFunction, RuntimeOptions } from "../emulator/runtime.ts";
import { repoRoot } from "../servers/paths.ts";
import { s3EventsWebhook } from "../servers/s3.ts";
import { verifyToken } from "./tokens.ts";

/**
 * DataDistiller's settings for the generic local runtime: what differs on one machine from the
 * deployed functions' environment, and where the runtime finds what AWS would provide.
 */
export function localFunctionEnv(options: { modelDir?: string; cores?: number; jwks?: string } = {}) {
  const cores = options.cores ?? availableParallelism();
  return (fn: LocalFunction): Record<string, string> => ({
    // Local Kafka is plaintext; in AWS the functions sign in to MSK with IAM.
    KAFKA_SASL_MECHANISM: "none",
    // The functions target Lambda's Node 24; the SDK's notice about an older local Node is noise here.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    // In Lambda each environment has vCPUs of its own; here a function's environments share this
    // machine's cores, so each one's ONNX sessions get its share (more threads than cores only
    // makes them wait on each other).
    ONNX_THREADS: String(Math.max(1, Math.floor(cores / fn.concurrency))),
    // A function that invokes another (the dead-letter API invokes redrive) reaches the runtime's Lambda API.
    AWS_ENDPOINT_URL_LAMBDA: fn.lambdaEndpoint,
    ...(options.modelDir ? { MODEL_DIR: options.modelDir } : {}),
    // The API's functions verify tokens of the local issuer with its keys (in AWS they discover
    // their issuer's through its OpenID configuration).
    ...(options.jwks ? { JWT_JWKS: options.jwks } : {}),
  });
}

/** The metric catalog as GET /metrics exposes it: the names, kinds and labels the functions emit in EMF. */
export const localMetricDescriptions: MetricDescription[] = METRIC_CATALOG.filter(
  (definition) => !definition.emittedBy.includes("runtime"),
).map((definition) => ({
  namespace: METRIC_NAMESPACE,
  name: definition.name,
  kind: definition.kind,
  prometheusName: prometheusName(definition),
  dimensions: definition.dimensions,
  help: definition.help,
  ...(definition.buckets ? { buckets: definition.buckets } : {}),
}));

/**
 * Where the runtime finds the packages the bundles leave to the layer, the S3 events, the JWT
 * issuer, and the catalog's names for the metrics it exposes.
 */
export const localRuntimeWiring: Pick<RuntimeOptions, "nodeModules" | "s3EventsWebhook" | "verifyJwt" | "metrics"> = {
  nodeModules: join(repoRoot, "node_modules"),
  s3EventsWebhook,
  verifyJwt: verifyToken,
  metrics: {
    descriptions: localMetricDescriptions,
    consumerLag: { prometheusName: prometheusName(METRICS.ConsumerLag), help: METRICS.ConsumerLag.help },
  },
};
