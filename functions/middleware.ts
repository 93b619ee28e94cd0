import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { parser } from "@aws-lambda-powertools/parser/middleware";
import { KafkaMskEventSchema } from "@aws-lambda-powertools/parser/schemas";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import type { z } from "zod";
import { isTransient, reasonOf, retryTransient } from "../shared/adapters/faults.ts";
import type { JobStore } from "../shared/adapters/job-store.ts";
import { countingFailures, PipelineMetrics } from "../shared/adapters/metrics.ts";
import { parseMessage } from "../shared/domain/messages.ts";
import { type BatchItem, batchResponse, type KafkaBatchResponse, processIsolated } from "../shared/stages/records.ts";

/**
 * The functions' middleware: one middy stack with Powertools' Logger (the invocation's context on
 * every line), Metrics (flushed at the end of each invocation) and, for Kafka-triggered stages,
 * Parser (the MSK event validated and each record's key and value decoded).
 */

/**
 * A function's logger and metrics, named after it. `pipeline` emits the metric catalog's metrics
 * (shared/domain/metric-catalog.ts) with exactly their dimensions; `metrics` is Powertools'
 * instance the middleware flushes (cold starts).
 */
export function observability(serviceName: string) {
  const logger = new Logger({ serviceName });
  // Metrics' own notices (e.g. "no application metrics to publish" after every invocation that
  // emitted none) go to the function's logger at debug level instead of warning on each one.
  const notices = {
    debug: (...content: unknown[]) => logger.debug(content.map(String).join(" ")),
    info: (...content: unknown[]) => logger.debug(content.map(String).join(" ")),
    warn: (...content: unknown[]) => logger.debug(content.map(String).join(" ")),
    error: (...content: unknown[]) => logger.error(content.map(String).join(" ")),
  };
  return {
    logger,
    metrics: new Metrics({ serviceName, logger: notices }),
    pipeline: new PipelineMetrics(serviceName, { logger: notices }),
  };
}

/** Any handler behind the common stack: context in the logs, metrics flushed. */
export function withObservability<E, R>(
  serviceName: string,
  handler: (event: E, context: Context, tools: ReturnType<typeof observability>) => Promise<R>,
) {
  const tools = observability(serviceName);
  return middy<E, R>((event: E, context: Context) => tools.pipeline.around(() => handler(event, context, tools)))
    .use(injectLambdaContext(tools.logger, { resetKeys: true }))
    .use(logMetrics(tools.metrics));
}

/**
 * A handler that keeps its own logger and metrics (HTTP routes publish theirs per request) behind
 * the same stack: the invocation's context on every line of its logger.
 */
export function withLambdaContext<E, R>(logger: Logger, handler: (event: E) => Promise<R>) {
  return middy<E, R>((event: E) => handler(event)).use(injectLambdaContext(logger, { resetKeys: true }));
}

type MskEvent = z.infer<typeof KafkaMskEventSchema>;

/** What a Kafka-triggered stage declares; the stack does the rest. */
export interface KafkaStage<M extends { jobId: string }> {
  serviceName: string;
  /** The schema of one record's value (JSON). */
  message: z.ZodType<M>;
  jobs: Pick<JobStore, "fail" | "noteErrors">;
  /**
   * Processes messages together (a whole batch, or one record when isolating a failure).
   * Idempotent: at-least-once delivery repeats records within and across batches. `metrics`
   * takes the stage's own catalog metrics, published when the invocation ends.
   */
  run(messages: M[], logger: Logger, metrics: PipelineMetrics): Promise<void>;
}

/**
 * The ids that tie log lines to what a user or operator knows: jobs, documents, tenants of the
 * messages (whichever of these fields they carry).
 */
export function correlationIds(messages: readonly unknown[]) {
  const ids = { jobIds: new Set<string>(), documentIds: new Set<string>(), tenants: new Set<string>() };
  for (const message of messages as { jobId?: unknown; tenant?: unknown; document?: { documentId?: unknown } }[]) {
    if (typeof message.jobId === "string") ids.jobIds.add(message.jobId);
    if (typeof message.tenant === "string") ids.tenants.add(message.tenant);
    if (typeof message.document?.documentId === "string") ids.documentIds.add(message.document.documentId);
  }
  return { jobIds: [...ids.jobIds], documentIds: [...ids.documentIds], tenants: [...ids.tenants] };
}

/** The batch's id in the logs: its topic-partitions and offset ranges ("chunks.to-embed-3@120-139"). */
export function batchId(records: Record<string, { offset: number }[]>): string {
  return Object.entries(records)
    .map(([partition, list]) => `${partition}@${list[0]?.offset ?? ""}-${list.at(-1)?.offset ?? ""}`)
    .join(",");
}

/** Room kept at the end of an invocation for isolating a failure and answering. */
const reserveMs = (remainingMs: number) => Math.max(5_000, remainingMs * 0.2);

/**
 * A Kafka-triggered handler: parse the event (Parser), decode and validate each record (a
 * malformed record is logged and skipped: no retry can fix it), run the stage with poison
 * isolation and transient retries, and answer with the records to retry as a partial batch
 * response (`ReportBatchItemFailures` on the event source mapping).
 */
export function kafkaStage<M extends { jobId: string }>(stage: KafkaStage<M>) {
  const { logger, metrics, pipeline } = observability(stage.serviceName);
  // A job this stack fails (a record no retry can fix) counts as failed with reason "error";
  // stages that fail jobs for their document's sake count those themselves ("bad-input").
  const jobs = countingFailures(stage.jobs, pipeline, "error");
  const handler = (event: MskEvent, context: Context) => pipeline.around(() => processBatch(event, context));
  const processBatch = async (event: MskEvent, context: Context): Promise<KafkaBatchResponse> => {
    logger.appendKeys({ batch: batchId(event.records) });
    const deadline = Date.now() + context.getRemainingTimeInMillis() - reserveMs(context.getRemainingTimeInMillis());
    const items: BatchItem<M>[] = [];
    let malformed = 0;
    for (const [partition, records] of Object.entries(event.records)) {
      for (const record of records) {
        const parsed = parseMessage(stage.message, record.value);
        if (parsed.success) items.push({ ref: { partition, offset: record.offset }, message: parsed.data as M });
        else {
          malformed++;
          logger.error("malformed message skipped", { partition, offset: record.offset, issues: parsed.error.issues });
        }
      }
    }
    const started = Date.now();
    const { retry, failed } = await processIsolated(items, {
      run: (messages) => stage.run(messages, logger, pipeline),
      retry: (task) =>
        retryTransient(task, {
          budgetMs: deadline - Date.now(),
          onRetry: (error, attempt) =>
            logger.warn("transient fault, trying again", { attempt, error: reasonOf(error) }),
        }),
      isTransient,
      reasonOf,
      fail: async (message, reason) => {
        await jobs.fail(message.jobId, `${stage.serviceName}: ${reason}`);
      },
      note: (messages, reason) =>
        stage.jobs.noteErrors(
          messages.map((message) => message.jobId),
          `${stage.serviceName}: ${reason}`,
        ),
    });
    for (const { item, reason } of failed) {
      logger.error("record failed its job", { ...item.ref, jobId: item.message.jobId, reason });
    }
    if (retry.length > 0) logger.warn("records handed back for retry", { records: retry.map((item) => item.ref) });
    const ms = Date.now() - started;
    const stageDimension = { stage: stage.serviceName };
    pipeline.add("BatchSize", items.length + malformed, stageDimension).add("StageDuration", ms, stageDimension);
    if (retry.length > 0) pipeline.add("RecordsRetried", retry.length, stageDimension);
    // One line per invocation with every id that ties it to jobs, documents and tenants.
    logger.info("batch processed", {
      records: items.length + malformed,
      malformed,
      failed: failed.length,
      retried: retry.length,
      ms,
      ...correlationIds(items.map((item) => item.message)),
    });
    return batchResponse(retry.map((item) => item.ref));
  };
  return middy(handler)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics))
    .use(parser({ schema: KafkaMskEventSchema }));
}
