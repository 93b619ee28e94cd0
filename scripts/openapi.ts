/**
 * `npm run openapi`: writes the API's OpenAPI 3.1 description, generated from the zod schemas the
 * handlers validate with, to docs/openapi.json (or the path given). `--check` writes nothing and
 * fails when the file is not what the schemas generate.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildOpenApiDocument } from "../shared/api/openapi.ts";

export const DOCUMENT_PATH = join(import.meta.dirname, "..", "docs", "openapi.json");

export const renderDocument = () => `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const target = process.argv.slice(2).find((arg) => !arg.startsWith("--")) ?? DOCUMENT_PATH;
  const rendered = renderDocument();
  if (check) {
    let current = "";
    try {
      current = readFileSync(target, "utf8");
    } catch {
      // missing: stale
    }
    if (current !== rendered) {
      console.error(`${target} is not what the schemas generate: run npm run openapi`);
      process.exit(1);
    }
    console.log(`${target} is up to date`);
  } else {
    writeFileSync(target, rendered);
    console.log(`wrote ${target}`);
  }
}
