/**
 * The `datadistiller` command end to end: the real bin run as a child process against the whole
 * platform on the local stack, checked for what users and scripts rely on (JSON shapes, exit
 * codes, one-line errors, highlighted output).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobStatus, SearchResponse } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { startTestPlatform, tenantClient } from "../support/platform.ts";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../../bin/datadistiller.mjs", import.meta.url));

let platform: Platform;
let tenant: string;
let token: string;
let dir: string;
const logs: string[] = [];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the command as a user would, without a terminal and without colors. */
async function cli(args: string[], options: { target?: boolean } = {}): Promise<Outcome> {
  const target = options.target === false ? [] : ["--endpoint", platform.runtime.apiUrl, "--token", token];
  const { FORCE_COLOR: _, DATADISTILLER_TOKEN: __, DATADISTILLER_ENDPOINT: ___, ...inherited } = process.env;
  const env = { ...inherited, NO_COLOR: "1" };
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args, ...target], {
      cwd: dir,
      env,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof code !== "number") throw error;
    return { code, stdout: stdout ?? "", stderr: stderr ?? "" };
  }
}

const lines = (text: string) => text.split("\n").filter((line) => line.trim() !== "");

const FILES = {
  "aurora.txt":
    "Quokkafrost lights shimmer over the northern sky when charged particles from the sun meet the magnetosphere.\n\n" +
    "Observers in Tromsø watch the green and violet curtains of the aurora borealis dance above the fjords on clear winter nights.",
  "volcano.md":
    "# Volcanoes\n\nMagma rises through the crust and erupts as lava. Stratovolcanoes such as Mount Fuji build steep cones " +
    "from layers of ash and lava; shield volcanoes like Mauna Loa spread wide and flat.",
  "bread.html":
    "<html><body><h1>Sourdough</h1><p>A sourdough starter of flour and water ferments with wild yeast and lactobacilli; " +
    "the long proof gives the bread its open crumb and tangy flavour.</p></body></html>",
};

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line));
  ({ tenant, token } = await tenantClient(platform, "cli"));
  dir = await mkdtemp(join(tmpdir(), "datadistiller-cli-"));
  for (const [name, text] of Object.entries(FILES)) await writeFile(join(dir, name), text);
  await writeFile(join(dir, "late.txt"), "Penguins huddle together through the Antarctic winter to keep warm.");
  await writeFile(join(dir, "slides.docx"), "not a supported type");
}, 600_000);

afterAll(async () => {
  await platform?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("datadistiller CLI", () => {
  let jobs: Array<JobStatus & { file: string; reason?: string }> = [];
  const documentOf = (file: string) => jobs.find((job) => job.file === file)?.documentId as string;

  it("--help exits 0 for the program and every command", async () => {
    const commands = [[], ["ingest"], ["search"], ["jobs"], ["delete"], ["dlq"], ["dlq", "list"], ["dlq", "redrive"]];
    const outcomes = await Promise.all(commands.map((command) => cli([...command, "--help"], { target: false })));
    outcomes.forEach((outcome, index) => {
      expect(outcome.code, commands[index]?.join(" ")).toBe(0);
      expect(outcome.stdout).toMatch(/^Usage: datadistiller/);
    });
    expect(outcomes[2]?.stdout).toContain("--no-rerank");
    expect(outcomes[2]?.stdout).toContain("--endpoint");
  });

  it("ingest --wait --json: every job COMPLETED with all its chunks embedded and indexed", async () => {
    const outcome = await cli(["ingest", ...Object.keys(FILES), "--wait", "--json", "--concurrency", "2"]);
    expect(outcome.code, outcome.stderr).toBe(0);
    ({ jobs } = JSON.parse(outcome.stdout) as { jobs: typeof jobs });
    expect(jobs.map((job) => job.file).sort()).toEqual(Object.keys(FILES).sort());
    for (const job of jobs) {
      expect(job, job.reason).toMatchObject({ state: "COMPLETED", filename: job.file });
      expect(job.jobId).toBeTruthy();
      expect(job.documentId).toBeTruthy();
      expect(job.counts.chunksTotal).toBeGreaterThan(0);
      expect(job.counts.chunksEmbedded).toBe(job.counts.chunksTotal);
      expect(job.counts.chunksIndexed).toBe(job.counts.chunksTotal);
    }
    // No progress bars or lines in JSON mode.
    expect(outcome.stderr).toBe("");
  });

  it("search --json: the API's result shape, the expected document first", async () => {
    const outcome = await cli(["search", "quokkafrost northern lights", "--json"]);
    expect(outcome.code, outcome.stderr).toBe(0);
    const response = JSON.parse(outcome.stdout) as SearchResponse;
    const top = response.results[0];
    expect(top).toMatchObject({
      documentId: documentOf("aurora.txt"),
      chunkId: expect.any(String),
      page: expect.any(Number),
      text: expect.stringContaining("Quokkafrost"),
      highlights: expect.stringContaining("<mark>Quokkafrost</mark>"),
      score: expect.any(Number),
      scores: { fused: expect.any(Number) },
    });
    expect(response.timings.total).toEqual(expect.any(Number));
  });

  it("search for people: document, page, highlighted snippet, scores and timings", async () => {
    const outcome = await cli(["search", "quokkafrost", "--mode", "bm25", "--k", "3"]);
    expect(outcome.code, outcome.stderr).toBe(0);
    const [first] = outcome.stdout.split("\n");
    expect(first).toMatch(/^1\. aurora\.txt \(doc-[0-9a-f]+\) {2}page 1 {2}score /);
    expect(outcome.stdout).toContain("**Quokkafrost** lights shimmer");
    expect(outcome.stdout).toMatch(/bm25 \d+\.\d+ · dense – · fused \d\.\d+ · rerank –/);
    expect(outcome.stdout).toMatch(/1 result in \d+\.\d ms \(.*retrieve/);
  });

  it("a local endpoint needs no token: one is minted for --tenant", async () => {
    const outcome = await cli(
      [
        "search",
        "sourdough starter",
        "--json",
        "--no-rerank",
        "--endpoint",
        platform.runtime.apiUrl,
        "--tenant",
        tenant,
      ],
      { target: false },
    );
    expect(outcome.code, outcome.stderr).toBe(0);
    const response = JSON.parse(outcome.stdout) as SearchResponse;
    expect(response.results[0]?.documentId).toBe(documentOf("bread.html"));
  });

  it("jobs lists the tenant's jobs; jobs <id> shows one", async () => {
    const list = await cli(["jobs", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    const listed = (JSON.parse(list.stdout) as { jobs: JobStatus[] }).jobs;
    expect(listed.map((job) => job.jobId).sort()).toEqual(jobs.map((job) => job.jobId).sort());

    const table = await cli(["jobs"]);
    expect(lines(table.stdout)[0]).toMatch(/^JOB +STATE +FILE +EMBEDDED +INDEXED +UPDATED$/);
    for (const job of jobs) expect(table.stdout).toContain(job.jobId);

    const job = jobs[0] as JobStatus;
    const detail = await cli(["jobs", job.jobId]);
    expect(detail.code, detail.stderr).toBe(0);
    expect(detail.stdout).toMatch(/^state +COMPLETED$/m);
    const total = job.counts.chunksTotal;
    expect(detail.stdout).toContain(`${total} total, ${total} embedded (100%), ${total} indexed (100%)`);
    expect(detail.stdout).toMatch(/^ {2}INDEXING +\S+ +\+/m);

    const json = await cli(["jobs", job.jobId, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ jobId: job.jobId, state: "COMPLETED" });
  });

  it("ingest for people: line progress on stderr, a summary on stdout", async () => {
    const outcome = await cli(["ingest", "late.txt", "--wait", "--collection", "extra"]);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stderr).toMatch(/^late\.txt: uploaded \d+ B \(job /m);
    expect(outcome.stderr).toMatch(/^late\.txt: COMPLETED/m);
    expect(outcome.stdout).toMatch(/^late\.txt +COMPLETED +1 +doc-/m);
    expect(outcome.stdout).toContain("1 completed");
  });

  it("delete removes a document from search", async () => {
    const documentId = documentOf("aurora.txt");
    const outcome = await cli(["delete", documentId]);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain(`deleted ${documentId}`);
    const search = await cli(["search", "quokkafrost northern lights", "--json"]);
    const response = JSON.parse(search.stdout) as SearchResponse;
    expect(response.results.map((result) => result.documentId)).not.toContain(documentId);
    expect(response.results.length).toBeGreaterThan(0);
  });

  it("dlq list and redrive answer JSON for a tenant without dead letters", async () => {
    const list = await cli(["dlq", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ deadLetters: [] });
    const redrive = await cli(["dlq", "redrive", "--json"]);
    expect(redrive.code, redrive.stderr).toBe(0);
    expect(JSON.parse(redrive.stdout)).toEqual({ redriven: [] });
    expect((await cli(["dlq", "list"])).stdout.trim()).toBe("no dead letters");
  });

  it("errors are one line and a non-zero exit code", async () => {
    const unknownType = await cli(["ingest", "slides.docx", "--wait"]);
    expect(unknownType.code).toBe(1);
    expect(lines(unknownType.stderr)).toEqual([expect.stringMatching(/^error: slides\.docx: unsupported file type/)]);

    const missing = await cli(["ingest", "nowhere.pdf"]);
    expect(missing.code).toBe(1);
    expect(lines(missing.stderr)).toEqual(["error: nowhere.pdf: no such file"]);

    const badToken = await cli(["search", "lava", "--endpoint", platform.runtime.apiUrl, "--token", "not-a-jwt"], {
      target: false,
    });
    expect(badToken.code).toBe(1);
    expect(lines(badToken.stderr)).toEqual([expect.stringMatching(/^error: HTTP 401\b/)]);
    expect(badToken.stdout).toBe("");

    const notFound = await cli(["jobs", "no-such-job"]);
    expect(notFound.code).toBe(1);
    expect(lines(notFound.stderr)).toEqual([expect.stringMatching(/^error: HTTP 404: /)]);

    const usage = await cli(["search", "lava", "--mode", "fuzzy"]);
    expect(usage.code).toBe(2);
    expect(lines(usage.stderr)).toEqual([
      expect.stringMatching(/^error: option '--mode <mode>' argument 'fuzzy' is invalid/),
    ]);
  });
});
