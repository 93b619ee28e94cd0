/**
 * CPU time of the local platform's processes, by role, from /proc (Linux): each function's
 * execution environments (named by the service in their template metadata), the local runtime
 * itself (HTTP API, event sources, S3 notifications) and each server (Kafka, the S3 server,
 * DynamoDB Local). Benchmarks take a snapshot before and after a run and divide the difference
 * by the work done.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { readPid } from "../localstack/servers/process.ts";

/** CPU milliseconds (user + system) by pid, with each pid's role. */
export type CpuSnapshot = Map<number, { role: string; cpuMs: number }>;

/** Clock ticks per second of /proc's utime and stime: 100 on every Linux build Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

interface ProcInfo {
  pid: number;
  ppid: number;
  cpuMs: number;
  cmdline: string[];
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields follow the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [ppid, utime, stime] = [Number(fields[1]), Number(fields[11]), Number(fields[12])];
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return { pid, ppid, cpuMs: ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND, cmdline };
  } catch {
    return undefined; // gone meanwhile, or not ours to read
  }
}

/** CPU milliseconds (user + system) one process has spent so far; NaN when it is gone. */
export function processCpuMs(pid: number): number {
  return readProc(pid)?.cpuMs ?? Number.NaN;
}

function allProcesses(): ProcInfo[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => readProc(Number(name)) ?? []);
}

/** Function name (`<stack>-<logicalId>`) → its DataDistiller service, from the synthesized templates. */
export function functionServices(cdkOut: string): Map<string, string> {
  const services = new Map<string, string>();
  for (const file of readdirSync(cdkOut).filter((name) => name.endsWith(".template.json"))) {
    const stackName = file.replace(/\.template\.json$/, "");
    const template = JSON.parse(readFileSync(join(cdkOut, file), "utf8")) as {
      Resources?: Record<string, { Type: string; Metadata?: { DataDistiller?: { service?: string } } }>;
    };
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      const service = resource.Metadata?.DataDistiller?.service;
      if (resource.Type === "AWS::Lambda::Function" && service) services.set(`${stackName}-${logicalId}`, service);
    }
  }
  return services;
}

/**
 * The processes of the platform this checkout runs (`npm start` from `repoRoot`) and of its
 * servers, each with its role; a helper process (e.g. esbuild's service) counts for its parent.
 */
export function platformCpu(repoRoot: string, services: Map<string, string>): CpuSnapshot {
  const processes = allProcesses();
  const byPid = new Map(processes.map((info) => [info.pid, info]));
  const roles = new Map<number, string>();
  for (const name of ["kafka", "s3", "dynamodb"]) {
    const pid = readPid(name);
    if (pid !== undefined && byPid.has(pid)) roles.set(pid, name);
  }
  for (const info of processes) {
    const worker = info.cmdline.findIndex((arg) => arg.endsWith("lambda-worker.ts"));
    if (worker >= 0) {
      const name = info.cmdline[worker + 1] ?? "function";
      roles.set(info.pid, services.get(name) ?? name);
      continue;
    }
    const runsPlatform = info.cmdline.some((arg) => arg.endsWith("localstack/platform/cli.ts"));
    if (runsPlatform && info.cmdline.includes("start") && cwdOf(info.pid) === repoRoot) {
      roles.set(info.pid, "local-runtime");
    }
  }
  const roleOf = (info: ProcInfo): string | undefined => {
    for (let current: ProcInfo | undefined = info, depth = 0; current && depth < 64; depth++) {
      const role = roles.get(current.pid);
      if (role) return role;
      current = byPid.get(current.ppid);
    }
    return undefined;
  };
  const snapshot: CpuSnapshot = new Map();
  for (const info of processes) {
    const role = roleOf(info);
    if (role) snapshot.set(info.pid, { role, cpuMs: info.cpuMs });
  }
  return snapshot;
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/**
 * CPU milliseconds each role spent between two snapshots. A process that started in between
 * counts from zero; one that ended in between is lost (its time is reported by nobody).
 */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): Map<string, number> {
  const spent = new Map<string, number>();
  for (const [pid, { role, cpuMs }] of after) {
    spent.set(role, (spent.get(role) ?? 0) + cpuMs - (before.get(pid)?.cpuMs ?? 0));
  }
  return spent;
}
