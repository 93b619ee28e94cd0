import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ensureModels } from "../../layers/models.ts";
// The runtime's event sources are kafkajs consumers: without this each connection spins while idle.
import "../../shared/adapters/kafkajs-idle-fix.ts";
import type { LocalHandler } from "../emulator/http-api.ts";
import { LocalRuntime } from "../emulator/runtime.ts";
import { repoRoot } from "../servers/paths.ts";
import { StackError, stopProcess } from "../servers/process.ts";
import { services, stackUp } from "../servers/stack.ts";
import { localFunctionEnv, localRuntimeWiring } from "./settings.ts";
import { localJwks, localTokenHandler } from "./tokens.ts";

export const cdkOut = join(repoRoot, "cdk.out");

/** Writes the CloudFormation templates (and bundles the functions) into cdk.out, offline. */
export function synth(log: (line: string) => void): void {
  const began = Date.now();
  const result = spawnSync("npx", ["cdk", "synth", "--quiet"], {
    cwd: repoRoot,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (result.status !== 0) throw new StackError(`cdk synth failed (exit ${result.status})`);
  log(`synthesized the template in ${((Date.now() - began) / 1000).toFixed(1)}s`);
}

export interface Platform {
  runtime: LocalRuntime;
  env: Record<string, string>;
  modelDir: string;
  stop(): Promise<void>;
}

/**
 * The whole platform on this machine: the local servers (or the user's), the models, the
 * synthesized template, and the runtime that runs it. `stop` undoes only what this call started.
 */
export async function startPlatform(options: {
  log: (line: string) => void;
  apiPort?: number;
  skipSynth?: boolean;
  localHandlers?: LocalHandler[];
  /** Variables set on every function on top of the template's (a test's smaller thresholds). */
  functionEnv?: Record<string, string>;
}): Promise<Platform> {
  const { log } = options;
  const { env, states } = await stackUp(log);
  Object.assign(process.env, env);
  const modelDir = await ensureModels();
  if (!options.skipSynth) synth(log);
  const runtime = await LocalRuntime.start({
    cdkOut,
    stackEnv: env,
    // Tokens of the local issuer are verified with its key (a deployed API discovers its issuer's).
    functionEnv: withOverrides(localFunctionEnv({ modelDir, jwks: await localJwks() }), options.functionEnv),
    ...localRuntimeWiring,
    apiPort: options.apiPort ?? Number(process.env.API_PORT ?? 3000),
    // Environments per function behind an HTTP route (Lambda gives each request its own): a burst of
    // 20 uploads queued behind 2 environments waited ~10 requests' time each.
    maxRequestConcurrency: Number(process.env.LOCAL_REQUEST_CONCURRENCY ?? 4),
    // The pipeline's functions yield the CPU to the API's: at 20 clients uploading while the
    // pipeline embeds, POST /uploads otherwise waits behind the embedders.
    backgroundNiceness: Number(process.env.LOCAL_BACKGROUND_NICENESS ?? 10),
    log,
    // The local identity provider first (the CLI's tokens), then the caller's (e.g. the console).
    localHandlers: [localTokenHandler(), ...(options.localHandlers ?? [])],
  });
  return {
    runtime,
    env,
    modelDir,
    async stop() {
      await runtime.stop();
      for (const service of services) {
        if (states[service.name] === "started") await stopProcess(service.name);
      }
    },
  };
}

function withOverrides<T>(env: (fn: T) => Record<string, string>, overrides: Record<string, string> = {}) {
  return (fn: T) => ({ ...env(fn), ...overrides });
}

/** The logical id of the function that runs a DataDistiller service ("redrive", …), from its template metadata. */
export function serviceFunction(runtime: LocalRuntime, service: string): string {
  const ids = runtime.functionIds(
    (resource) => (resource.Metadata?.DataDistiller as { service?: string } | undefined)?.service === service,
  );
  if (ids.length !== 1) throw new StackError(`the template has ${ids.length} functions for the service ${service}`);
  return ids[0] as string;
}

/**
 * Invokes one template function once, the way `aws lambda invoke` does in AWS (e.g. the redrive
 * function): on the local servers (started if needed, and then stopped again), from cdk.out.
 */
export async function invokeFunction(service: string, event: unknown, log: (line: string) => void) {
  const { env, states } = await stackUp(log);
  const runtime = await LocalRuntime.start({
    cdkOut,
    stackEnv: env,
    apiPort: 0,
    functionsOnly: true,
    functionEnv: localFunctionEnv(),
    ...localRuntimeWiring,
    log,
  });
  try {
    return await runtime.invoke(serviceFunction(runtime, service), event);
  } finally {
    await runtime.stop();
    for (const service of services) {
      if (states[service.name] === "started") await stopProcess(service.name);
    }
  }
}
