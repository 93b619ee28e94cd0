import { describe, expect, it } from "vitest";
import { ConfigError, FUNCTION_ENVIRONMENT, FUNCTION_NAMES, loadFunctionConfig } from "../../shared/adapters/config.ts";

describe("the environment contract", () => {
  it("names every function once, in the order the stack builds them", () => {
    expect(FUNCTION_NAMES).toEqual([
      "api-meta",
      "upload-url",
      "on-upload",
      "split",
      "embed",
      "index",
      "compact",
      "search",
      "collections",
      "migration-fanout",
      "search-shard",
      "job-status",
      "delete-document",
      "dead-letter",
      "redrive",
      "sweeper",
      "dead-letter-api",
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
      EMBEDDING_MODEL: "all-minilm-l6-v2-q",
      MODEL_DIR: "/opt/models",
      JOB_RETENTION_DAYS: 7,
      AWS_REGION: "eu-west-1",
    });
  });

  it("fails at cold start with every missing or malformed variable named", () => {
    const load = () => loadFunctionConfig("index", { JOB_RETENTION_DAYS: "0", MERGE_FACTOR: "one" });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/JOBS_TABLE.*INDEX_BUCKET.*JOB_RETENTION_DAYS.*MERGE_FACTOR/);
  });

  it("every function but the API's description, its dead-letter view, the migration fan-out and the search shards needs the jobs table; only Kafka producers get brokers", () => {
    const producers = FUNCTION_NAMES.filter((name) =>
      (FUNCTION_ENVIRONMENT[name] as readonly string[]).includes("KAFKA_BROKERS"),
    );
    // index sends chunks back to embedding (a collection's second index, migrations);
    // migration-fanout sends a migration's re-embed requests for the collections API.
    expect(producers).toEqual(["on-upload", "split", "embed", "index", "migration-fanout", "redrive", "sweeper"]);
    for (const name of FUNCTION_NAMES) {
      if (["api-meta", "dead-letter-api", "migration-fanout", "search-shard"].includes(name)) continue;
      expect(FUNCTION_ENVIRONMENT[name] as readonly string[], name).toContain("JOBS_TABLE");
    }
  });

  it("every function behind an authenticated route verifies bearer tokens; no other does", () => {
    const verifiers = FUNCTION_NAMES.filter((name) =>
      (FUNCTION_ENVIRONMENT[name] as readonly string[]).includes("JWT_ISSUER"),
    );
    expect(verifiers).toEqual([
      "upload-url",
      "search",
      "collections",
      "job-status",
      "delete-document",
      "dead-letter-api",
    ]);
    for (const name of verifiers) {
      expect(FUNCTION_ENVIRONMENT[name] as readonly string[], name).toEqual(
        expect.arrayContaining(["TENANT_CLAIM", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS"]),
      );
    }
  });
});
