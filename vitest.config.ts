import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Starts Kafka, the S3 server and DynamoDB Local once for the whole run (or uses the
    // endpoints already set in the environment).
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    // Fetching models or building native code on a fresh machine can take minutes.
    hookTimeout: 600_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: { name: "unit-and-integration", include: ["test/**/*.test.ts"], exclude: ["test/e2e/**"] },
      },
      {
        // The whole platform on the local stack. It runs after the other tests, one file at a time:
        // each file's runtime owns the S3 event webhook port, which the S3 notification test also
        // listens on.
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
        },
      },
    ],
  },
});
