import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * Downloads and builds (jars, Go binaries, models) are cached outside the repo so a fresh clone
 * reuses them. Override with DATADISTILLER_CACHE.
 */
export const cacheDir = resolve(
  process.env.DATADISTILLER_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "datadistiller"),
);
