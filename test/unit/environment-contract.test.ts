import { describe, expect, it } from "vitest";
import { ConfigError, FUNCTION_ENVIRONMENT, FUNCTION_NAMES, loadFunctionConfig } from "../../shared/adapters/config.ts";

describe("the environment contract", () => {
  it("names every function once, in the order the stack builds them", () => {
    expect(FUNCTION_NAMES).toEqual([
      "upload-url",
      "on-upload",
      "split",
      "embed",
      "index",
      "search",
      "job-status",
      "delete-document",
      "dead-letter",
      "redrive",
      "sweeper",
    ]);
  });

  it("a handler reads its variables, parsed, and Lambda's AWS_REGION", () => {
    const config = loadFunctionConfig("split", {
      JOBS_TABLE: "jobs",
      KAFKA_BROKERS: "b1:9098, b2:9098",
      KAFKA_SASL_MECHANISM: "aws-iam",
      TOPIC_CHUNKS_TO_EMBED: "chunks.to-embed",
      CHUNKS_PER_GROUP: "8",
      MODEL_DIR: "/opt/models",
      JOB_RETENTION_DAYS: "7",
      AWS_REGION: "eu-west-1",
      UNRELATED: "ignored",
    });
    expect(config).toEqual({
      JOBS_TABLE: "jobs",
      KAFKA_BROKERS: ["b1:9098", "b2:9098"],
      KAFKA_SASL_MECHANISM: "aws-iam",
      TOPIC_CHUNKS_TO_EMBED: "chunks.to-embed",
      CHUNKS_PER_GROUP: 8,
      MODEL_DIR: "/opt/models",
      JOB_RETENTION_DAYS: 7,
      AWS_REGION: "eu-west-1",
    });
  });

  it("fails at cold start with every missing or malformed variable named", () => {
    const load = () => loadFunctionConfig("index", { MAX_SEGMENTS: "one", JOB_RETENTION_DAYS: "0" });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/JOBS_TABLE.*INDEX_BUCKET.*MAX_SEGMENTS.*JOB_RETENTION_DAYS/);
  });

  it("every function needs the jobs table; only Kafka producers get brokers", () => {
    const producers = FUNCTION_NAMES.filter((name) =>
      (FUNCTION_ENVIRONMENT[name] as readonly string[]).includes("KAFKA_BROKERS"),
    );
    expect(producers).toEqual(["on-upload", "split", "embed", "redrive", "sweeper"]);
    for (const name of FUNCTION_NAMES) {
      expect(FUNCTION_ENVIRONMENT[name] as readonly string[], name).toContain("JOBS_TABLE");
    }
  });
});
