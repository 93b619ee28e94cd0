import { statSync } from "node:fs";
import { join } from "node:path";
import { DataDistillerClient } from "../../cli/api-client.ts";
import { consoleHandler } from "../../localstack/platform/console.ts";
import { cdkOut, type Platform, startPlatform } from "../../localstack/platform/platform.ts";
import { mintToken } from "../../localstack/platform/tokens.ts";
import { uniqueName } from "./clients.ts";

/**
 * The whole platform for an end-to-end test file. The e2e files run one after another (they share
 * the S3 event webhook port); the first synthesizes the template, the others reuse cdk.out.
 * `withConsole` serves the web console as `npm start` does.
 */
export async function startTestPlatform(
  log: (line: string) => void,
  options: { withConsole?: boolean; functionEnv?: Record<string, string> } = {},
): Promise<Platform> {
  const runStarted = Number(process.env.DATADISTILLER_TEST_RUN_STARTED ?? 0);
  let synthesizedAt = 0;
  try {
    synthesizedAt = statSync(join(cdkOut, "manifest.json")).mtimeMs;
  } catch {
    // never synthesized
  }
  return startPlatform({
    log,
    apiPort: 0,
    skipSynth: runStarted > 0 && synthesizedAt > runStarted,
    ...(options.withConsole ? { localHandlers: [await consoleHandler({ log })] } : {}),
    ...(options.functionEnv ? { functionEnv: options.functionEnv } : {}),
  });
}

/** A client of the platform's API for a fresh tenant (a token minted by the local issuer). */
export async function tenantClient(platform: Platform, prefix = "e2e") {
  const tenant = uniqueName(prefix);
  const token = await mintToken({ tenant, audience: "datadistiller" });
  return { tenant, token, client: new DataDistillerClient(platform.runtime.apiUrl, token) };
}
