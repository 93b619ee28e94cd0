import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Starts Kafka, the S3 server and DynamoDB Local once for the whole run (or uses the
    // endpoints already set in the environment).
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    // Fetching models or building native code on a fresh machine can take minutes.
    hookTimeout: 600_000,
    pool: "forks",
  },
});
