import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in <root>/localstack). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Downloads and builds (jars, Go binaries, models) are cached outside the repo so a fresh clone
 * reuses them. Override with DATADISTILLER_CACHE.
 */
export const cacheDir = resolve(
  process.env.DATADISTILLER_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "datadistiller"),
);

/** Per-checkout runtime state: pid files, logs, server data. Ignored by git. */
export const stateDir = resolve(process.env.DATADISTILLER_STATE ?? join(repoRoot, ".local", "stack"));
