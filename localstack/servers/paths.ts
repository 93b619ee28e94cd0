import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export { cacheDir } from "../../layers/cache.ts";

/** The repository root (this file lives in <root>/localstack/servers). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Per-checkout runtime state: pid files, logs, server data. Ignored by git. */
export const stateDir = resolve(process.env.DATADISTILLER_STATE ?? join(repoRoot, ".local", "stack"));
