/**
 * The web console end to end, in a real browser (Debian's Chromium driven by playwright-core):
 * served by the local stack exactly as `npm start` serves it, it uploads documents through the
 * drop zone's file input (presigned PUTs straight to S3, cross-origin), shows the jobs complete,
 * searches, and shows the right document first with highlights, page and scores.
 * `UPDATE_SCREENSHOT=1` also refreshes docs/console.png for the README.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it, onTestFailed } from "vitest";
import { DataDistillerClient } from "../../cli/api-client.ts";
import { LOCAL_CONSOLE_TENANT } from "../../localstack/platform/console.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { mintToken } from "../../localstack/platform/tokens.ts";
import { repoRoot } from "../../localstack/servers/paths.ts";
import { startTestPlatform } from "../support/platform.ts";

let platform: Platform;
let browser: Browser;
let page: Page;
const logs: string[] = [];
const browserErrors: string[] = [];
const network: string[] = [];
// A fresh collection per run: the console's tenant ("local") is shared with `npm start`.
const collection = `console-${Date.now().toString(36)}`;

/** The browser's DataTransfer, used in the page (this file is type-checked without the DOM library). */
declare const DataTransfer: new () => { items: { add(file: File): void } };

const LIGHTHOUSE = [
  "# The keeper's logbook",
  "",
  "For thirty winters the lighthouse keeper on Skerryvore counted the storm petrels and",
  "shearwaters that nested below the lantern, writing each tally into a leather logbook.",
  "",
  "Her seabird census is still the longest unbroken record of petrels on the Hebridean coast.",
].join("\n");
const SOURDOUGH = [
  "# Feeding a sourdough starter",
  "",
  "Mix equal weights of rye flour and water each morning, discard half, and keep the jar",
  "somewhere warm. A lively starter doubles within six hours and smells pleasantly sour.",
].join("\n");

beforeAll(async () => {
  platform = await startTestPlatform((line) => logs.push(line), { withConsole: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (error) => browserErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") browserErrors.push(`${message.text()} ${message.location().url}`);
  });
  // What the browser sent and got back, shown when the test fails (the uploads go straight to S3).
  page.on("request", (request) =>
    network.push(
      `${new Date().toISOString()} → ${request.method()} ${request.url().split("?")[0]} ${JSON.stringify(request.headers())}`,
    ),
  );
  page.on("response", async (response) =>
    network.push(
      `${new Date().toISOString()} ← ${response.status()} ${response.request().method()} ${response.url().split("?")[0]} ${JSON.stringify(await response.allHeaders())}${response.ok() ? "" : ` ${await response.text().catch(() => "")}`}`,
    ),
  );
  page.on("requestfailed", (request) =>
    network.push(
      `${new Date().toISOString()} ✗ ${request.method()} ${request.url().split("?")[0]} ${request.failure()?.errorText}`,
    ),
  );
}, 600_000);

afterAll(async () => {
  await browser?.close();
  mkdirSync(join(repoRoot, "test-results"), { recursive: true });
  writeFileSync(join(repoRoot, "test-results/console-network.log"), `${network.join("\n")}\n`);
  writeFileSync(join(repoRoot, "test-results/console-platform.log"), `${logs.join("\n")}\n`);
  if (platform) {
    // Tidy the shared "local" tenant: drop this run's documents.
    const token = await mintToken({ tenant: LOCAL_CONSOLE_TENANT, audience: "datadistiller" });
    const client = new DataDistillerClient(platform.runtime.apiUrl, token);
    const { jobs } = await client.listJobs().catch(() => ({ jobs: [] }));
    for (const job of jobs.filter((job) => job.collection === collection)) {
      await client.deleteDocument(job.documentId).catch(() => {});
    }
  }
  await platform?.stop();
});

it("uploads through the drop zone, watches the jobs complete, and finds the document first", async () => {
  onTestFailed(() => {
    console.error(`browser network:\n${network.join("\n")}\nbrowser errors:\n${browserErrors.join("\n")}`);
    console.error(`platform log (last 200 lines):\n${logs.slice(-200).join("\n")}`);
  });
  const apiUrl = platform.runtime.apiUrl;
  await page.goto(`${apiUrl}/console/`);
  await expect.poll(() => page.getByTestId("tenant").textContent()).toContain(`tenant ${LOCAL_CONSOLE_TENANT}`);
  expect(await page.getByTestId("endpoint").textContent()).toBe(apiUrl);

  await page.getByTestId("upload-collection").fill(collection);
  // One file through the file picker, one dropped on the drop zone.
  await page
    .getByTestId("upload-input")
    .setInputFiles([{ name: "keeper-logbook.md", mimeType: "text/markdown", buffer: Buffer.from(LIGHTHOUSE) }]);
  const dropped = await page.evaluateHandle((text) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([text], "sourdough.txt", { type: "text/plain" }));
    return transfer;
  }, SOURDOUGH);
  await page.getByTestId("dropzone").dispatchEvent("drop", { dataTransfer: dropped });

  // Both jobs appear in the list and reach COMPLETED (polled by the page).
  for (const name of ["keeper-logbook.md", "sourdough.txt"]) {
    const job = page
      .getByTestId("job")
      .filter({ has: page.getByTestId("job-filename").getByText(name, { exact: true }) })
      .filter({ hasText: collection });
    // The row names its collection after the first poll: two cold starts (upload-url, job-status)
    // that take tens of seconds on a loaded 2-core machine.
    await job.first().waitFor({ timeout: 60_000 });
    await expect
      .poll(() => job.first().getAttribute("data-state"), { timeout: 60_000, interval: 250 })
      .toBe("COMPLETED");
    expect(await job.first().getByTestId("job-progress").textContent()).toMatch(
      /\d+ chunks? · \d+ embedded · \d+ indexed/,
    );
  }

  // A question in other words than the document's (it says "counted the storm petrels", "seabird census").
  await page.getByTestId("search-collection").fill(collection);
  await page.getByTestId("search-input").fill("who counted seabirds at the lighthouse?");
  await page.getByTestId("search-submit").click();
  const first = page.getByTestId("result").first();
  await first.waitFor({ timeout: 15_000 });
  expect(await first.getByTestId("result-title").textContent()).toBe("keeper-logbook.md");
  expect(await first.getByTestId("result-page").textContent()).toMatch(/^page \d+$/);
  const marked = await first.getByTestId("highlight").allTextContents();
  expect(marked.map((word) => word.toLowerCase())).toEqual(expect.arrayContaining(["lighthouse"]));
  expect(await first.getByTestId("result-scores").textContent()).toMatch(
    /score [\d.e-]+ · bm25 [\d.e-]+ · dense [\d.e-]+ · fused/,
  );
  expect(await page.getByTestId("search-timings").textContent()).toMatch(/retrieve [\d.]+ ms .*server [\d.]+ ms/);

  mkdirSync(join(repoRoot, "test-results"), { recursive: true });
  await page.screenshot({ path: join(repoRoot, "test-results/console.png") });
  if (process.env.UPDATE_SCREENSHOT === "1") {
    mkdirSync(join(repoRoot, "docs"), { recursive: true });
    await page.screenshot({ path: join(repoRoot, "docs/console.png") });
  }

  // The dead-letters view: nothing went wrong for this tenant.
  await page.getByTestId("tab-dead-letters").click();
  await page.getByTestId("dead-letters-empty").waitFor({ timeout: 15_000 });
  expect(await page.getByTestId("dead-letters-error").isHidden()).toBe(true);
  expect(await page.getByTestId("dead-letters-redrive").isDisabled()).toBe(true);

  expect(browserErrors).toEqual([]);
}, 120_000);

/** A GET with the path sent as written (fetch would normalize "..", as browsers do). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string; location?: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    httpRequest({ hostname, port, path, method: "GET" }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          body,
          ...(response.headers.location ? { location: response.headers.location } : {}),
        }),
      );
    })
      .on("error", reject)
      .end();
  });
}

it("serves only the console's own files, with their content types", async () => {
  const apiUrl = platform.runtime.apiUrl;
  for (const path of [
    "/console/../package.json",
    "/console/..%2fpackage.json",
    "/console/%2e%2e/%2e%2e/package.json",
    "/console/..%5c..%5cpackage.json",
    "/console/%2fetc%2fpasswd",
    "/console/missing.js",
  ]) {
    const answer = await rawGet(apiUrl, path);
    expect(answer.status, path).toBe(404);
    expect(answer.body, path).not.toContain('"name": "datadistiller"');
  }
  expect(await rawGet(apiUrl, "/console")).toMatchObject({ status: 301, location: "/console/" });

  const index = await fetch(`${apiUrl}/console/`);
  expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
  expect(await index.text()).toContain('<script type="module" src="main.js"></script>');
  const script = await fetch(`${apiUrl}/console/main.js`);
  expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  const style = await fetch(`${apiUrl}/console/style.css`);
  expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");

  // The local stand-in issuer's token works against the API, for the "local" tenant.
  const config = (await (await fetch(`${apiUrl}/console/config.json`)).json()) as { endpoint: string; token: string };
  expect(config.endpoint).toBe(apiUrl);
  const jobs = await fetch(`${apiUrl}/jobs`, { headers: { authorization: `Bearer ${config.token}` } });
  expect(jobs.status).toBe(200);
});
