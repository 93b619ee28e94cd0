import { afterAll, beforeAll, expect, it } from "vitest";
import type { DataDistillerClient, JobStatus, UploadTicket } from "../../cli/api-client.ts";
import type { Platform } from "../../localstack/platform/platform.ts";
import { startBroker, stopBroker } from "../../localstack/servers/kafka.ts";
import { runningPid } from "../../localstack/servers/process.ts";
import { makeProsePages, makeUtf8Text } from "../fixtures/make-fixtures.ts";
import { startTestPlatform, tenantClient } from "../support/platform.ts";

/**
 * The broker stopped in the middle of an ingestion: every job completes, with exact counts and no
 * manual redrive, and the consumers resume soon after the broker is back. Runs only when the test
 * run started the broker itself (it can stop and restart only its own).
 *
 * 30 s by default, to keep npm test short: far longer than the consumers' session timeout (6 s)
 * and the retry budget that once failed jobs (~7 s), about the 33 s outage issue 12 reported; any
 * outage within the retry budget (minutes) takes the same paths. `OUTAGE_SECONDS=60` runs the
 * issue's 60 s scenario.
 */

const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 30) * 1000;
let platform: Platform;
let api: DataDistillerClient;
const logs: string[] = [];
const ownBroker = runningPid("kafka") !== undefined;

beforeAll(async () => {
  if (!ownBroker) return;
  platform = await startTestPlatform((line) => logs.push(`${new Date().toISOString()} ${line}`));
  ({ client: api } = await tenantClient(platform, "outage"));
}, 600_000);

afterAll(async () => {
  // Whatever happened, the broker is left running for the tests after this one.
  if (ownBroker && runningPid("kafka") === undefined) await startBroker();
  await platform?.stop();
});

const documentText = (i: number) => `${makeProsePages(1, 20)[0]} Outage document number ${i}.`;

it.skipIf(!ownBroker)(
  `completes every job of an ingestion during which the broker was down for ${OUTAGE_MS / 1000} s, with no manual redrive`,
  async () => {
    const tickets: UploadTicket[] = [];
    const ingest = async (i: number) =>
      tickets.push(
        await api.ingest(
          { filename: `outage-${i}.txt`, contentType: "text/plain", bytes: makeUtf8Text(documentText(i)) },
          { collection: "outage" },
        ),
      );
    // Half the documents go in, and the broker stops while they are on their way through the stages.
    for (let i = 0; i < 6; i++) await ingest(i);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const stoppedAt = Date.now();
    expect(await stopBroker()).toBe(true);
    // The other half is uploaded while the broker is down: on-upload cannot publish them yet.
    for (let i = 6; i < 12; i++) await ingest(i);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
    const progressAtRestart = progress(await jobsOf(tickets));
    await startBroker();
    const backAt = Date.now();
    console.log(`broker down ${((backAt - stoppedAt) / 1000).toFixed(1)} s`);

    // Every event source fetches again within seconds of the broker being back.
    const sources = platform.runtime.eventSources;
    const resumed = new Map<string, number>();
    while (resumed.size < sources.length && Date.now() - backAt < 60_000) {
      for (const source of sources) {
        if (!resumed.has(source.mapping.id) && source.lastFetchAt > backAt)
          resumed.set(source.mapping.id, source.lastFetchAt);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const resumeSeconds = sources.map((source) => ((resumed.get(source.mapping.id) ?? Number.NaN) - backAt) / 1000);
    console.log(
      `event sources fetching again after ${sources.map((source, i) => `${source.mapping.id} ${resumeSeconds[i]?.toFixed(1)} s`).join(", ")} (broker back at ${new Date(backAt).toISOString()})`,
    );

    // How soon is printed above, not asserted (timed assertions flake on a busy machine); that
    // every event source came back is asserted.
    expect(resumed.size).toBe(sources.length);

    let resumedAt = 0;
    const finished: JobStatus[] = [];
    const deadline = backAt + 300_000;
    while (finished.length < tickets.length) {
      if (Date.now() > deadline) throw new Error(`only ${finished.length} of ${tickets.length} jobs ended in 300 s`);
      const jobs = await jobsOf(tickets);
      if (!resumedAt && progress(jobs) > progressAtRestart) resumedAt = Date.now();
      finished.splice(0, finished.length, ...jobs.filter((job) => job.state === "COMPLETED" || job.state === "FAILED"));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    console.log(
      `first job progress ${((resumedAt - backAt) / 1000).toFixed(1)} s after the broker was back; ` +
        `all ${tickets.length} jobs done ${((Date.now() - backAt) / 1000).toFixed(1)} s after`,
    );
    for (const job of finished) {
      expect(job.state, job.error).toBe("COMPLETED");
      expect(job.counts.chunksEmbedded).toBe(job.counts.chunksTotal);
      expect(job.counts.chunksIndexed).toBe(job.counts.chunksTotal);
    }
    // Nothing needed a redrive.
    expect((await api.deadLetters()).deadLetters).toEqual([]);
  },
  600_000,
);

/** The tickets' jobs in one request (the tenant is this test's own; a poll must not load the machine). */
async function jobsOf(tickets: UploadTicket[]): Promise<JobStatus[]> {
  const wanted = new Set(tickets.map((ticket) => ticket.jobId));
  const { jobs } = await api.listJobs({ limit: 100 });
  const found = jobs.filter((job) => wanted.has(job.jobId));
  expect(found).toHaveLength(wanted.size);
  return found;
}

/** A number that grows whenever any of the jobs moves: states and counters summed. */
function progress(jobs: JobStatus[]): number {
  const order = ["PENDING_UPLOAD", "UPLOADED", "SPLITTING", "EMBEDDING", "INDEXING", "COMPLETED", "FAILED"];
  return jobs.reduce(
    (total, job) => total + order.indexOf(job.state) * 1_000_000 + job.counts.chunksEmbedded + job.counts.chunksIndexed,
    0,
  );
}
