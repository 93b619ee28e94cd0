/**
 * Prometheus's own tools, built from the Go module proxy into the cache once (like the S3
 * server): prom2json reads the text exposition with Prometheus's parser (expfmt) and prints it
 * as JSON. (promtool is not built: its module pulls in most of Prometheus and took over an hour
 * to compile on a busy 2-core machine.)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { cacheDir } from "../../localstack/servers/paths.ts";
import { requireCommand, run } from "../../localstack/servers/process.ts";

export const PROM2JSON = { module: "github.com/prometheus/prom2json/cmd/prom2json", version: "v1.4.2" };

/** Builds the tool if it is not cached yet ; returns its path. */
export function ensureGoTool(tool: { module: string; version: string }): string {
  const name = tool.module.split("/").at(-1) as string;
  const binary = join(cacheDir, "bin", `${name}-${tool.version}`);
  if (existsSync(binary)) return binary;
  requireCommand("go", "Install Go 1.25 or newer: Prometheus's tools are built with it.");
  // One build at a time (test files in parallel, a CI step): the others wait for its binary.
  const lock = `${binary}.lock`;
  mkdirSync(join(cacheDir, "bin"), { recursive: true });
  try {
    mkdirSync(lock);
  } catch {
    // A lock older than 45 minutes is a build that died: taken over.
    const live = () => existsSync(lock) && Date.now() - statSync(lock).mtimeMs < 45 * 60_000;
    while (!existsSync(binary) && live()) spawnSync("sleep", ["5"]);
    if (existsSync(binary)) return binary;
    rmSync(lock, { recursive: true, force: true });
    return ensureGoTool(tool);
  }
  try {
    build(name, tool, binary);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return binary;
}

function build(name: string, tool: { module: string; version: string }, binary: string): void {
  // Built into a scratch GOBIN and renamed, so an interrupted build never leaves a partial binary.
  const scratch = join(cacheDir, "bin", `.build-${name}-${tool.version}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  run("go", ["install", `${tool.module}@${tool.version}`], { cwd: scratch, env: { ...process.env, GOBIN: scratch } });
  renameSync(join(scratch, name), binary);
  rmSync(scratch, { recursive: true, force: true });
}

/** A metric family as prom2json prints it. */
export interface Prom2JsonFamily {
  name: string;
  help?: string;
  type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
  metrics: {
    labels?: Record<string, string>;
    value?: string;
    count?: string;
    sum?: string;
    buckets?: Record<string, string>;
  }[];
}

/** Parses an exposition with Prometheus's parser (prom2json reading it from stdin). */
export function prom2json(exposition: string): Prom2JsonFamily[] {
  const result = spawnSync(ensureGoTool(PROM2JSON), [], { input: exposition, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`prom2json failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Prom2JsonFamily[];
}

// `tsx test/support/prometheus-tools.ts`: builds prom2json into the cache (CI does it before the tests).
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const tool of [PROM2JSON]) console.log(ensureGoTool(tool));
}
