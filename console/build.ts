/**
 * Builds the web console into console/dist: the TypeScript app bundled by esbuild, the page and
 * its stylesheet copied. The same files serve locally (`npm start`, under /console/) and from any
 * static host for a deployed stage (`npm run build:console -- --endpoint https://…` also writes
 * dist/config.json so the page knows its API).
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const consoleDir = dirname(fileURLToPath(import.meta.url));
export const consoleDist = join(consoleDir, "dist");
const STAMP = ".built";
const STATIC_FILES = ["index.html", "style.css"];
/** Everything the bundle is made of: a change to any of these makes the build stale. */
const SOURCES = [
  join(consoleDir, "src"),
  ...STATIC_FILES.map((file) => join(consoleDir, file)),
  join(consoleDir, "build.ts"),
];

function newestMtime(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/** True when dist is missing or older than one of its sources. */
export function consoleBuildIsStale(outdir = consoleDist): boolean {
  const built = statSync(join(outdir, STAMP), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return SOURCES.some((source) => newestMtime(source) > built);
}

export async function buildConsole(options: { outdir?: string; endpoint?: string; minify?: boolean } = {}) {
  const outdir = options.outdir ?? consoleDist;
  const began = performance.now();
  mkdirSync(outdir, { recursive: true });
  rmSync(join(outdir, STAMP), { force: true });
  await build({
    entryPoints: [join(consoleDir, "src/main.ts")],
    outfile: join(outdir, "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    sourcemap: true,
    minify: options.minify ?? true,
    legalComments: "none",
    logLevel: "warning",
  });
  for (const file of STATIC_FILES) copyFileSync(join(consoleDir, file), join(outdir, file));
  const config = join(outdir, "config.json");
  if (options.endpoint) {
    const endpoint = new URL(options.endpoint).toString().replace(/\/$/, "");
    writeFileSync(config, `${JSON.stringify({ endpoint }, null, 2)}\n`);
  } else {
    rmSync(config, { force: true });
  }
  writeFileSync(join(outdir, STAMP), new Date().toISOString());
  return { outdir, ms: Math.round(performance.now() - began) };
}

/** Builds only when a source changed since the last build (what `npm start` does). */
export async function ensureConsoleBuilt(log?: (line: string) => void): Promise<string> {
  if (!consoleBuildIsStale()) return consoleDist;
  const { ms } = await buildConsole();
  log?.(`built the web console in ${ms} ms`);
  return consoleDist;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      endpoint: { type: "string" },
      outdir: { type: "string" },
      "no-minify": { type: "boolean" },
    },
  });
  const { outdir, ms } = await buildConsole({
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
    ...(values.outdir ? { outdir: resolve(values.outdir) } : {}),
    minify: !values["no-minify"],
  });
  process.stderr.write(
    `web console built in ${ms} ms: ${outdir}${values.endpoint ? ` (API ${values.endpoint})` : " (no endpoint: the page asks for one)"}\n`,
  );
}
