import type { TestProject } from "vitest/node";
import { stopProcess } from "../localstack/servers/process.ts";
import { services, stackUp } from "../localstack/servers/stack.ts";

/**
 * Brings the local stack up once for the test run and exports its endpoints to the test
 * workers. Only the projects that need servers (integration, e2e) list this file, so
 * `npm run test:unit` starts nothing. Servers that were already running (a developer's
 * `npm run stack:up`) are reused and left running; those started here are stopped at the end.
 */
export default async function setup(_project: TestProject) {
  // Each project runs its global setup; the first one brings the stack up for the whole run.
  if (process.env.DATADISTILLER_TEST_RUN_STARTED) return;
  const { env, states } = await stackUp((line) => console.log(`[stack] ${line}`));
  // End-to-end files synthesize the template once per run (see test/support/platform.ts).
  Object.assign(process.env, env, { DATADISTILLER_TEST_RUN_STARTED: String(Date.now()) });
  return async () => {
    for (const service of services) {
      if (states[service.name] === "started") await stopProcess(service.name);
    }
  };
}
