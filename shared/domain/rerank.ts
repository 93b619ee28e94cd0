/**
 * Reranking the fused top-N with a cross-encoder, without letting it make things worse or slower than
 * promised:
 *
 * - The cross-encoder's score is combined with the fused ranking, not substituted for it: either an
 *   interpolation of min-max normalised scores (`interpolate`: weight · rerank + (1 − weight) · fused, both
 *   scaled to [0, 1] over the top-N) or a weighted reciprocal rank fusion (`rank`: weight / (60 + rerank rank)
 *   + (1 − weight) / (60 + fused rank)). Weight 1 is the cross-encoder alone, 0 the fused order.
 * - Scoring has a deadline. When it passes, the fused order is returned at once and the report says so; the
 *   scorer is told to stop (the batch in flight finishes, nothing after it starts).
 * - The report says whether the results were reranked, by which model, and why not.
 *
 * Pure: the cross-encoder comes in through CrossEncoderPort.
 */
import { z } from "zod";

export type RerankMethod = "interpolate" | "rank";

/** The rank-fusion constant, as in reciprocal rank fusion. */
export const RERANK_RRF_K = 60;

/** Request limits (also the zod schema's). */
export const RERANK_LIMITS = {
  topN: { min: 1, max: 100, default: 20 },
  deadlineMs: { min: 1, max: 10_000, default: 2_000 },
} as const;

/** Server-side defaults, overridable per request. The weight is a prior until a real model is measured. */
export const RERANK_DEFAULTS = { method: "interpolate" as RerankMethod, weight: 0.5 };

/** The request fields that steer reranking (spread into the search request schema). */
export const rerankRequestFields = {
  rerank: z.boolean().default(true).describe("rerank the fused top-N with the cross-encoder, when one is installed"),
  rerankTopN: z
    .number()
    .int()
    .min(RERANK_LIMITS.topN.min)
    .max(RERANK_LIMITS.topN.max)
    .default(RERANK_LIMITS.topN.default)
    .describe("how many fused candidates the cross-encoder scores"),
  rerankMethod: z
    .enum(["interpolate", "rank"])
    .optional()
    .describe("interpolate normalised scores, or fuse ranks (weighted RRF); default set by the server"),
  rerankWeight: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe("the cross-encoder's share of the combined score: 1 = its order alone, 0 = the fused order"),
  rerankDeadlineMs: z
    .number()
    .int()
    .min(RERANK_LIMITS.deadlineMs.min)
    .max(RERANK_LIMITS.deadlineMs.max)
    .optional()
    .describe("time allowed for scoring; past it the fused order is returned"),
};

export const rerankSkipReasons = ["disabled", "no-model", "no-candidates", "deadline", "error"] as const;
export type RerankSkipReason = (typeof rerankSkipReasons)[number];

/** What a search response says about reranking. */
export const rerankReportSchema = z.object({
  reranked: z.boolean().describe("true when the results are ordered by the combined score"),
  model: z
    .object({
      name: z.string(),
      randomWeights: z.boolean().describe("a generated test model: its scores carry no relevance"),
    })
    .optional()
    .describe("the cross-encoder (absent when none is installed)"),
  reason: z.enum(rerankSkipReasons).optional().describe("why the results were not reranked"),
  message: z.string().optional().describe("the reason in words"),
  method: z.enum(["interpolate", "rank"]),
  weight: z.number(),
  topN: z.number().int(),
  deadlineMs: z.number().int(),
  /** Candidates sent to the cross-encoder (0 when it was not asked). */
  candidates: z.number().int(),
  ms: z.number().optional().describe("time spent scoring"),
});
export type RerankReport = z.infer<typeof rerankReportSchema>;

export interface CrossEncoderModel {
  name: string;
  randomWeights: boolean;
}

/** The cross-encoder, as this module needs it. */
export interface CrossEncoderPort {
  readonly model: CrossEncoderModel;
  /** One relevance logit per passage (higher = more relevant); stops before its next batch once `signal` aborts. */
  relevance(query: string, passages: readonly string[], signal?: AbortSignal): Promise<number[]>;
}

export interface RerankSettings {
  enabled: boolean;
  topN: number;
  method: RerankMethod;
  weight: number;
  deadlineMs: number;
}

/** Scores a reranked candidate carries on top of its retrieval scores. */
export interface RerankScores {
  fused: number;
  /** The cross-encoder's probability that the passage is relevant (sigmoid of its logit). */
  rerank?: number;
  /** The score the reranked top-N is ordered by. */
  combined?: number;
}

export const sigmoid = (logit: number) => 1 / (1 + Math.exp(-logit));

function minMax(values: readonly number[]): (value: number) => number {
  const min = Math.min(...values);
  const range = Math.max(...values) - min;
  return range > 0 ? (value) => (value - min) / range : () => 1;
}

/** 1-based ranks of `values`, highest first; ties share the order they came in. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => (values[b] as number) - (values[a] as number) || a - b);
  const rank = new Array<number>(values.length);
  order.forEach((index, position) => {
    rank[index] = position + 1;
  });
  return rank;
}

/**
 * The candidates (in fused order, best first) with their cross-encoder logits combined into one score,
 * sorted by it; ties keep the fused order. The input is not modified.
 */
export function combineRerank<T extends { scores: RerankScores }>(
  candidates: readonly T[],
  logits: readonly number[],
  method: RerankMethod,
  weight: number,
): T[] {
  if (logits.length !== candidates.length) {
    throw new Error(`combineRerank: ${logits.length} scores for ${candidates.length} candidates`);
  }
  if (!(weight >= 0 && weight <= 1)) throw new RangeError(`rerank weight ${weight} is not in [0, 1]`);
  const fused = candidates.map((candidate) => candidate.scores.fused);
  let combined: number[];
  if (method === "interpolate") {
    const normRerank = minMax(logits);
    const normFused = minMax(fused);
    combined = candidates.map(
      (_, i) => weight * normRerank(logits[i] as number) + (1 - weight) * normFused(fused[i] as number),
    );
  } else {
    const rerankRank = ranks(logits);
    // The candidates come in fused order: position i has fused rank i + 1.
    combined = candidates.map(
      (_, i) => weight / (RERANK_RRF_K + (rerankRank[i] as number)) + (1 - weight) / (RERANK_RRF_K + i + 1),
    );
  }
  return candidates
    .map((candidate, i) => ({
      candidate: {
        ...candidate,
        scores: { ...candidate.scores, rerank: sigmoid(logits[i] as number), combined: combined[i] as number },
      },
      i,
    }))
    .sort((a, b) => (b.candidate.scores.combined as number) - (a.candidate.scores.combined as number) || a.i - b.i)
    .map(({ candidate }) => candidate);
}

export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

/**
 * Reranks the top `settings.topN` of `fused` (best first) and returns the whole list with the reranked
 * head, or `fused` unchanged, and a report of what happened. A scorer failure is reported (reason
 * "error"), not thrown: the fused order is a correct answer.
 */
export async function rerankFused<T extends { scores: RerankScores }>(
  query: string,
  fused: readonly T[],
  textOf: (candidate: T) => string,
  settings: RerankSettings,
  encoder: CrossEncoderPort | undefined,
  unavailable = "no cross-encoder on the server",
): Promise<{ ranked: T[]; report: RerankReport; error?: unknown }> {
  const base = {
    method: settings.method,
    weight: settings.weight,
    topN: settings.topN,
    deadlineMs: settings.deadlineMs,
    ...(encoder ? { model: encoder.model } : {}),
  };
  const notReranked = (reason: RerankSkipReason, message: string, candidates = 0, ms?: number) => ({
    ranked: fused.slice(),
    report: { reranked: false, reason, message, candidates, ...base, ...(ms === undefined ? {} : { ms }) },
  });
  if (!settings.enabled) return notReranked("disabled", "the request turned reranking off");
  if (!encoder) return notReranked("no-model", unavailable);
  if (fused.length === 0) return notReranked("no-candidates", "nothing matched");

  const head = fused.slice(0, settings.topN);
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), settings.deadlineMs);
  });
  try {
    const logits = await Promise.race([
      encoder.relevance(
        query,
        head.map((candidate) => textOf(candidate)),
        abort.signal,
      ),
      deadline,
    ]);
    const ranked = [...combineRerank(head, logits, settings.method, settings.weight), ...fused.slice(settings.topN)];
    return { ranked, report: { reranked: true, candidates: head.length, ...base, ms: elapsed() } };
  } catch (error) {
    if (error instanceof DeadlineExceeded) {
      return notReranked(
        "deadline",
        `scoring ${head.length} candidates took longer than ${settings.deadlineMs} ms: fused order returned`,
        head.length,
        elapsed(),
      );
    }
    return {
      ...notReranked("error", `the cross-encoder failed: ${(error as Error).message}`, head.length, elapsed()),
      error,
    };
  } finally {
    clearTimeout(timer);
    // Stops the scorer before its next batch (a no-op when it has finished).
    abort.abort();
    // The scorer may still reject after the race is decided (an abort, a late failure): nobody waits for it.
    deadline.catch(() => undefined);
  }
}
