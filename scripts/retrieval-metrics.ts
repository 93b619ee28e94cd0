/** The metrics moved to shared/domain/retrieval-metrics.ts (the migration gate uses them too). */
export * from "../shared/domain/retrieval-metrics.ts";
