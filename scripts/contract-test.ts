/**
 * `npm run test:contract`: the HTTP API against its own OpenAPI document, on the whole local
 * platform. Starts the platform (servers, template, functions), seeds a tenant with a few
 * documents so search has something to rank, checks the served document with
 * openapi-spec-validator, then runs Schemathesis with that tenant's token: generated requests for
 * every operation (examples, coverage, fuzzing, stateful), checking no 5xx, responses that match
 * their schemas, only documented status codes and content types, invalid requests refused,
 * auth enforced, 405s with Allow. Both tools come from PyPI into a cached virtualenv.
 *
 *   npm run test:contract -- [--max-examples N] [--max-time SECONDS] [--no-synth]
 *
 * Exit 0 only with no failure and at least --min-requests requests sent.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DataDistillerClient, uploadFile } from "../cli/api-client.ts";
import { startPlatform } from "../localstack/platform/platform.ts";
import { mintToken } from "../localstack/platform/tokens.ts";
import { cacheDir, repoRoot } from "../localstack/servers/paths.ts";

const SCHEMATHESIS = "schemathesis==4.32.5";
const SPEC_VALIDATOR = "openapi-spec-validator==0.9.0";

const { values: options } = parseArgs({
  options: {
    "max-examples": { type: "string", default: "100" },
    "max-time": { type: "string", default: "240" },
    "min-requests": { type: "string", default: "1000" },
    seed: { type: "string", default: "20261203" },
    "no-synth": { type: "boolean", default: false },
  },
});

const log = (line: string) => console.log(`[contract] ${line}`);

/** A virtualenv with the two PyPI tools, made once per pinned version. */
function pythonTools(): { schemathesis: string; python: string } {
  const venv = join(cacheDir, "schemathesis", SCHEMATHESIS.replace("==", "-"), "venv");
  const bin = (name: string) => join(venv, "bin", name);
  if (!existsSync(bin("schemathesis"))) {
    log(`installing ${SCHEMATHESIS} and ${SPEC_VALIDATOR} from PyPI into ${venv}`);
    rmSync(venv, { recursive: true, force: true });
    mkdirSync(venv, { recursive: true });
    execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
    execFileSync(bin("pip"), ["install", "--quiet", SCHEMATHESIS, SPEC_VALIDATOR], { stdio: "inherit" });
  }
  return { schemathesis: bin("schemathesis"), python: bin("python") };
}

/** Three small documents with metadata, so search, filters and pagination return something. */
async function seed(client: DataDistillerClient): Promise<void> {
  const documents = [
    { filename: "aurora.txt", text: "Auroras shimmer when charged particles from the sun meet the magnetosphere." },
    { filename: "volcano.md", text: "# Volcanoes\n\nMagma rises through the crust and erupts as lava and ash." },
    { filename: "bread.txt", text: "Sourdough bread rises slowly: wild yeast and lactobacilli ferment the dough." },
  ];
  const jobs = await Promise.all(
    documents.map(async ({ filename, text }, i) => {
      const bytes = new TextEncoder().encode(text);
      const ticket = await client.requestUpload({
        filename,
        contentType: filename.endsWith(".md") ? "text/markdown" : "text/plain",
        size: bytes.byteLength,
        metadata: { author: "Ada Lovelace", year: 1843 + i, reviewed: i % 2 === 0 },
      });
      await uploadFile(ticket.upload, bytes, filename.endsWith(".md") ? "text/markdown" : "text/plain");
      return client.waitForJob(ticket.jobId, { timeoutMs: 300_000, intervalMs: 500 });
    }),
  );
  const failed = jobs.filter((job) => job.state !== "COMPLETED");
  if (failed.length > 0) throw new Error(`seeding failed: ${failed.map((job) => job.error).join("; ")}`);
}

/** Runs a tool in `cwd` (Schemathesis keeps a cache folder there). */
function run(command: string, args: string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      stdio: "inherit",
      env: { ...process.env, SCHEMATHESIS_TELEMETRY: "false" },
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

interface Summary {
  requests: number;
  failures: number;
  operations: number;
}

/** Requests sent and failures found, from Schemathesis's NDJSON event stream. */
function summarize(path: string): Summary {
  let requests = 0;
  let failures = 0;
  const operations = new Set<string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as Record<
      string,
      { recorder?: { label?: string; interactions?: object; checks?: object } }
    >;
    const finished = event.ScenarioFinished;
    if (!finished?.recorder) continue;
    // Stateful scenarios chain several operations; the others are one operation each.
    if (finished.recorder.label !== "Stateful tests") operations.add(finished.recorder.label ?? "");
    requests += Object.keys(finished.recorder.interactions ?? {}).length;
    for (const checks of Object.values(finished.recorder.checks ?? {}) as { status?: string }[][]) {
      failures += checks.filter((check) => check.status === "FAILURE").length;
    }
  }
  return { requests, failures, operations: operations.size };
}

async function main(): Promise<number> {
  const tools = pythonTools();
  const platform = await startPlatform({ log, apiPort: 0, skipSynth: options["no-synth"] });
  try {
    const base = platform.runtime.apiUrl;
    const tenant = `contract-${Date.now().toString(36)}`;
    const token = await mintToken({ tenant, audience: "datadistiller" });
    const began = Date.now();
    await seed(new DataDistillerClient(base, token));
    log(`seeded tenant ${tenant} with 3 documents in ${((Date.now() - began) / 1000).toFixed(1)} s`);

    const reports = join(repoRoot, ".local", "contract");
    rmSync(reports, { recursive: true, force: true });
    mkdirSync(reports, { recursive: true });
    const documentFile = join(reports, "openapi.json");
    const served = await fetch(`${base}/openapi.json`);
    if (!served.ok) throw new Error(`GET /openapi.json answered ${served.status}`);
    writeFileSync(documentFile, Buffer.from(await served.arrayBuffer()));
    const validated = await run(tools.python, ["-m", "openapi_spec_validator", documentFile], reports);
    if (validated !== 0) return validated;

    const ndjson = join(reports, "events.ndjson");
    const started = Date.now();
    const code = await run(
      tools.schemathesis,
      [
        "run",
        `${base}/openapi.json`,
        "--header",
        `Authorization: Bearer ${token}`,
        "--checks",
        [
          "not_a_server_error",
          "status_code_conformance",
          "content_type_conformance",
          "response_headers_conformance",
          "response_schema_conformance",
          "negative_data_rejection",
          "missing_required_header",
          "unsupported_method",
          "allow_header_conformance",
          "ignored_auth",
        ].join(","),
        "--max-examples",
        String(options["max-examples"]),
        "--max-time",
        String(options["max-time"]),
        "--seed",
        String(options.seed),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit,ndjson",
        "--report-dir",
        reports,
        "--report-ndjson-path",
        ndjson,
      ],
      reports,
    );
    const seconds = (Date.now() - started) / 1000;
    const summary = summarize(ndjson);
    const minRequests = Number(options["min-requests"]);
    console.log(
      `\ncontract: ${summary.operations} operations, ${summary.requests} requests, ${summary.failures} failures in ${seconds.toFixed(0)} s (reports in ${reports})`,
    );
    console.log(`${summary.requests - summary.failures} passed, ${summary.failures} failed`);
    if (code !== 0) return code;
    if (summary.requests < minRequests) {
      console.error(`only ${summary.requests} requests: fewer than --min-requests ${minRequests}`);
      return 1;
    }
    return 0;
  } finally {
    await platform.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
