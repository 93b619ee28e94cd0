import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stateDir } from "./paths.ts";

/** A clear, user-facing failure of the local stack (printed without a stack trace). */
export class StackError extends Error {
  override name = "StackError";
}

export const logFile = (name: string) => join(stateDir, `${name}.log`);
const pidFile = (name: string) => join(stateDir, `${name}.pid`);

/** Fails with a clear message when a tool the stack needs is not installed. */
export function requireCommand(command: string, hint: string): void {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  if (found.status !== 0) throw new StackError(`${command} is required but was not found on PATH. ${hint}`);
}

/** Runs a command to completion, failing with its output when it exits non-zero. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
    throw new StackError(`${command} ${args.join(" ")} failed (exit ${result.status}):\n${output}`);
  }
  return result.stdout;
}

export function isPortOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection({ port, host });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once("error", () => resolvePromise(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolvePromise(false);
    });
  });
}

export function readPid(name: string): number | undefined {
  if (!existsSync(pidFile(name))) return undefined;
  const pid = Number(readFileSync(pidFile(name), "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of this service's server if the one we started is still running. */
export function runningPid(name: string): number | undefined {
  const pid = readPid(name);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/**
 * Starts a long-running server detached from this process (its own process group, so it outlives
 * `npm run stack:up`), with stdout and stderr appended to <state>/<name>.log and its pid recorded.
 */
export function spawnDetached(
  name: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): number {
  mkdirSync(stateDir, { recursive: true });
  const log = openSync(logFile(name), "a");
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    detached: true,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  if (child.pid === undefined) throw new StackError(`could not start ${name} (${command})`);
  child.unref();
  writeFileSync(pidFile(name), `${child.pid}\n`);
  return child.pid;
}

/** Polls `probe` until it resolves true; fails with the tail of the log when the process dies or time runs out. */
export async function waitUntil(
  name: string,
  probe: () => Promise<boolean>,
  { timeoutMs = 90_000, intervalMs = 250 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    const pid = readPid(name);
    if (pid !== undefined && !isAlive(pid)) {
      throw new StackError(`${name} exited during start-up. Last lines of ${logFile(name)}:\n${tailLog(name)}`);
    }
    await sleep(intervalMs);
  }
  throw new StackError(
    `${name} did not become ready within ${timeoutMs / 1000}s. Last lines of ${logFile(name)}:\n${tailLog(name)}`,
  );
}

export function tailLog(name: string, lines = 20): string {
  if (!existsSync(logFile(name))) return "(no log)";
  return readFileSync(logFile(name), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** Stops the server we started: SIGTERM to its process group, then SIGKILL after a grace period. */
export async function stopProcess(name: string, graceMs = 15_000): Promise<boolean> {
  const pid = readPid(name);
  rmSync(pidFile(name), { force: true });
  if (pid === undefined || !isAlive(pid)) return false;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  };
  signalGroup("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) signalGroup("SIGKILL");
  while (isAlive(pid)) await sleep(50);
  return true;
}
