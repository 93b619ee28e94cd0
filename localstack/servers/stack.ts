import { credentialEnv } from "./credentials.ts";
import { dynamodb } from "./dynamodb.ts";
import { kafka } from "./kafka.ts";
import { isPortOpen, runningPid, StackError, stopProcess } from "./process.ts";
import { s3 } from "./s3.ts";
import type { LocalService } from "./service.ts";

export const services: LocalService[] = [kafka, s3, dynamodb];

export type ServiceState = "external" | "reused" | "started";

export interface StackUpResult {
  /** The variables clients use to reach the stack (what `stack:up` prints as exports). */
  env: Record<string, string>;
  states: Record<string, ServiceState>;
}

type Report = (line: string) => void;

/**
 * Brings up every service that the environment does not already point elsewhere, reusing
 * servers this checkout started before. Installs (jar resolution, Go builds) run one after
 * the other because they share caches; the servers then start together.
 */
export async function stackUp(report: Report = () => {}): Promise<StackUpResult> {
  const states: Record<string, ServiceState> = {};
  const toStart: LocalService[] = [];
  for (const service of services) {
    const external = process.env[service.externalEnv];
    if (external) {
      states[service.name] = "external";
      report(`${service.name}: using ${service.externalEnv}=${external}`);
    } else if (runningPid(service.name) !== undefined && (await service.isReady())) {
      states[service.name] = "reused";
      report(`${service.name}: already running on port ${service.port}`);
    } else if (await isPortOpen(service.port)) {
      throw new StackError(
        `${service.name}: port ${service.port} is already in use by a process this stack did not start. ` +
          `Stop it, or set ${service.externalEnv} to use that server instead.`,
      );
    } else {
      toStart.push(service);
    }
  }
  for (const service of toStart) {
    const began = Date.now();
    await service.install();
    report(`${service.name}: installed (${seconds(began)})`);
  }
  await Promise.all(
    toStart.map(async (service) => {
      const began = Date.now();
      await service.start();
      states[service.name] = "started";
      report(`${service.name}: ready on port ${service.port} (${seconds(began)})`);
    }),
  );
  return { env: stackEnv(), states };
}

/** Stops every server this checkout started; returns the names of those that were running. */
export async function stackDown(report: Report = () => {}): Promise<string[]> {
  const stopped: string[] = [];
  for (const service of services) {
    if (await stopProcess(service.name)) {
      stopped.push(service.name);
      report(`${service.name}: stopped`);
    }
  }
  return stopped;
}

export async function stackStatus(): Promise<{ name: string; state: string; detail: string }[]> {
  return Promise.all(
    services.map(async (service) => {
      const external = process.env[service.externalEnv];
      if (external) return { name: service.name, state: "external", detail: `${service.externalEnv}=${external}` };
      const pid = runningPid(service.name);
      if (pid === undefined) return { name: service.name, state: "stopped", detail: "" };
      const ready = await service.isReady();
      return {
        name: service.name,
        state: ready ? "running" : "not answering",
        detail: `pid ${pid}, port ${service.port}`,
      };
    }),
  );
}

/** Endpoints and credentials: the user's own where set, the local servers' otherwise. */
export function stackEnv(): Record<string, string> {
  const env: Record<string, string> = { ...credentialEnv() };
  for (const service of services) Object.assign(env, service.env());
  for (const name of Object.keys(env)) {
    const own = process.env[name];
    if (own) env[name] = own;
  }
  return env;
}

/** `export NAME='value'` lines a POSIX shell can eval. */
export function shellExports(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => `export ${name}='${value.replaceAll("'", "'\\''")}'`)
    .join("\n");
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;
