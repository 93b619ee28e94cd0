import pRetry from "p-retry";
import { isDomainError } from "../domain/errors.ts";

/**
 * Transient faults: what trying again later can fix (a broker failing over, the network, a
 * throttled or overloaded service). Everything else is a property of the input or of the code and
 * fails the same way every time.
 */

/** Socket-level error codes of Node and undici: the peer went away or could not be reached. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ESOCKETTIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** AWS error names that mean "slow down" or "not now" (the SDK already retried each a few times). */
const AWS_TRANSIENT_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "TooManyRequestsException",
  "TransactionConflictException",
  "TransactionInProgressException",
  "InternalServerError",
  "InternalError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "SlowDown",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "PriorRequestNotComplete",
  "LimitExceededException",
]);

/** kafkajs errors about reaching the cluster rather than about the request. */
const KAFKA_TRANSIENT_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSBrokerNotFound",
  "KafkaJSMetadataNotLoaded",
  "KafkaJSTopicMetadataNotLoaded",
  "KafkaJSStaleTopicMetadataAssignment",
  "KafkaJSLockTimeout",
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  retriable?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  cause?: unknown;
  originalError?: unknown;
  errors?: unknown;
}

/**
 * True when `error` (or what caused it) is a fault that can go away by itself: network errors,
 * throttling, 5xx answers, an unavailable or restarting Kafka broker, a domain error marked
 * retryable. Unknown errors are not transient: they are programming errors or bad input.
 */
export function isTransient(error: unknown, depth = 0): boolean {
  if (depth > 6 || typeof error !== "object" || error === null) return false;
  if (isDomainError(error)) return error.retryable;
  const e = error as ErrorLike;
  const name = typeof e.name === "string" ? e.name : "";
  const code = typeof e.code === "string" ? e.code : "";
  if (NETWORK_CODES.has(code) || AWS_TRANSIENT_NAMES.has(name) || KAFKA_TRANSIENT_NAMES.has(name)) return true;
  if (name.startsWith("KafkaJS") && e.retriable === true) return true;
  // A producer whose connection dropped says so; the publisher reconnects on the next attempt.
  if (name === "KafkaJSError" && typeof e.message === "string" && /disconnected/i.test(e.message)) return true;
  if (e.$retryable) return true;
  const status = Number(e.$metadata?.httpStatusCode);
  if (status === 429 || status >= 500) return true;
  if (name === "TransactionCanceledException") {
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
    return reasons.some((reason) => reason.Code === "TransactionConflict" || reason.Code === "ThrottlingError");
  }
  const nested = [e.cause, e.originalError, ...(Array.isArray(e.errors) ? e.errors : [])];
  return nested.some((inner) => isTransient(inner, depth + 1));
}

/** A readable one-line reason for an error, for job records and logs. */
export const reasonOf = (error: unknown): string =>
  error instanceof Error ? error.message || error.name : String(error ?? "unknown error");

/**
 * Runs `task`, trying it again on transient faults with exponential backoff (0.5 s doubling to
 * 5 s between tries, so work resumes within seconds of the fault going away) until it succeeds, fails for a reason that is not transient, or
 * `budgetMs` is spent (then the last fault is thrown). Long enough budgets ride out a broker
 * failover; the caller decides what is left to hand back to the event source.
 */
export async function retryTransient<T>(
  task: () => Promise<T>,
  options: { budgetMs: number; onRetry?: (error: unknown, attempt: number) => void },
): Promise<T> {
  const started = Date.now();
  return pRetry(task, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 500,
    maxTimeout: 5_000,
    factor: 2,
    randomize: true,
    maxRetryTime: Math.max(0, options.budgetMs),
    shouldRetry: ({ error }) => isTransient(error) && Date.now() - started < options.budgetMs,
    onFailedAttempt: ({ error, attemptNumber }) => {
      if (isTransient(error)) options.onRetry?.(error, attemptNumber);
    },
  });
}
