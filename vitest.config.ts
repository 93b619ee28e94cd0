import { defineConfig } from "vitest/config";

/** Starts Kafka, the S3 server and DynamoDB Local once for the run (or uses the endpoints already set). */
const localStack = ["test/global-setup.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    // Fetching models or building native code on a fresh machine can take minutes.
    hookTimeout: 600_000,
    pool: "forks",
    projects: [
      {
        // Pure code and narrow units with in-memory fakes: no server, no model download (`npm run test:unit`).
        extends: true,
        test: { name: "unit", include: ["test/unit/**/*.test.ts"] },
      },
      {
        // The CDK app synthesized and asserted on (esbuild bundles every function): no server.
        extends: true,
        test: { name: "infra", include: ["test/infra/**/*.test.ts"] },
      },
      {
        // Real Kafka, S3 server and DynamoDB Local; the local runtime's parts; the ONNX models.
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/runtime/**/*.test.ts", "test/*.test.ts"],
          globalSetup: localStack,
        },
      },
      {
        // The whole platform on the local stack. It runs after the other tests, one file at a time:
        // each file's runtime owns the S3 event webhook port, which the S3 notification test also
        // listens on.
        extends: true,
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: localStack,
          sequence: { groupOrder: 1 },
          fileParallelism: false,
        },
      },
    ],
  },
});
