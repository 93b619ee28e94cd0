import { describe, expect, it } from "vitest";
import { ExtractionError } from "../../shared/domain/errors.ts";
import type { DocumentUploaded } from "../../shared/domain/messages.ts";
import type { Chunk } from "../../shared/domain/types.ts";
import { type SplitDeps, splitDocument, splitDocuments } from "../../shared/stages/split.ts";
import { InMemoryJobs, job } from "./fakes/stores.ts";

const message = (jobId: string): DocumentUploaded => ({
  jobId,
  tenant: "acme",
  document: { documentId: `doc-${jobId}`, collection: "default", contentType: "text/plain" },
  bucket: "uploads",
  key: `uploads/acme/doc-${jobId}/notes.txt`,
  size: 42,
});

/** One chunk per word: enough to see grouping, ids and offsets come through unchanged. */
async function splitWords(documentId: string, bytes: Uint8Array): Promise<Chunk[]> {
  const text = new TextDecoder().decode(bytes);
  const chunks: Chunk[] = [];
  for (const match of text.matchAll(/\S+/g)) {
    const start = match.index;
    chunks.push({
      chunkId: `${documentId}:${chunks.length}`,
      documentId,
      ordinal: chunks.length,
      page: 1,
      start,
      end: start + match[0].length,
      text: match[0],
    });
  }
  return chunks;
}

function deps(jobs: InMemoryJobs, objects: Record<string, string | Error>, chunksPerGroup = 2): SplitDeps {
  return {
    jobs,
    objects: {
      read: async (_bucket, key) => {
        const body = objects[key];
        if (body === undefined) throw Object.assign(new Error(`NoSuchKey ${key}`), { name: "NoSuchKey" });
        if (body instanceof Error) throw body;
        return new TextEncoder().encode(body);
      },
    },
    split: splitWords,
    chunksPerGroup,
  };
}

describe("split stage", () => {
  it("records the chunk total, moves the job to EMBEDDING and groups the chunks in order", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"));
    const outcome = await splitDocument(message("j1"), deps(jobs, { [message("j1").key]: "one two three four five" }));
    if (outcome.kind !== "split") throw new Error(`expected a split, got ${JSON.stringify(outcome)}`);
    expect(outcome.chunks).toBe(5);
    expect(outcome.groups.map((group) => group.groupId)).toEqual(["j1:0", "j1:1", "j1:2"]);
    expect(outcome.groups.map((group) => group.chunks.map((chunk) => chunk.text))).toEqual([
      ["one", "two"],
      ["three", "four"],
      ["five"],
    ]);
    for (const group of outcome.groups) {
      expect(group).toMatchObject({ jobId: "j1", tenant: "acme", document: message("j1").document });
    }
    const stored = jobs.jobs.get("j1");
    expect(stored?.state).toBe("EMBEDDING");
    expect(stored?.chunksTotal).toBe(5);
    // Splitting began before the job moved to EMBEDDING, and its trace says when.
    const { SPLITTING: began, EMBEDDING: embedding } = stored?.stages ?? {};
    expect(began && embedding && Date.parse(began) <= Date.parse(embedding)).toBe(true);
  });

  it("a batch reads its jobs in one round trip and writes each job once", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"), job("j2", "UPLOADED"), job("j3", "UPLOADED"));
    const published: string[] = [];
    const messages = ["j1", "j2", "j3", "j2"].map(message);
    const { outcomes } = await splitDocuments(messages, {
      ...deps(jobs, Object.fromEntries(messages.map((m) => [m.key, `text of ${m.jobId}`]))),
      publish: async (groups) => {
        published.push(...groups.map((group) => group.groupId));
      },
    });
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(["split", "split", "split"]);
    expect(jobs.calls).toEqual(["getMany", "advance", "advance", "advance"]);
    expect(published).toEqual(["j1:0", "j1:1", "j2:0", "j2:1", "j3:0", "j3:1"]);
    for (const id of ["j1", "j2", "j3"])
      expect(jobs.jobs.get(id)).toMatchObject({ state: "EMBEDDING", chunksTotal: 3 });
  });

  it("a job that finished while its document was being split is skipped, not published", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"));
    const input: SplitDeps = {
      ...deps(jobs, { [message("j1").key]: "one two" }),
      split: async (documentId, bytes) => {
        await jobs.fail("j1", "deleted by its owner");
        return splitWords(documentId, bytes);
      },
    };
    expect(await splitDocument(message("j1"), input)).toEqual({ kind: "skipped", reason: "job j1 is FAILED" });
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "FAILED", error: "deleted by its owner" });
  });

  it("a redelivered message splits again into the same groups and leaves the job where it is", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"));
    const input = deps(jobs, { [message("j1").key]: "alpha beta gamma" });
    const first = await splitDocument(message("j1"), input);
    const again = await splitDocument(message("j1"), input);
    expect(again).toEqual(first);
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "EMBEDDING", chunksTotal: 3 });
  });

  it("skips a job that is gone, completed or failed, without reading the document", async () => {
    const jobs = new InMemoryJobs(job("done", "COMPLETED"), job("failed", "FAILED", { error: "earlier" }));
    const reads: string[] = [];
    const input: SplitDeps = {
      ...deps(jobs, {}),
      objects: {
        read: async (_bucket, key) => {
          reads.push(key);
          return new Uint8Array();
        },
      },
    };
    expect(await splitDocument(message("missing"), input)).toEqual({
      kind: "skipped",
      reason: "job missing does not exist",
    });
    expect(await splitDocument(message("done"), input)).toEqual({ kind: "skipped", reason: "job done is COMPLETED" });
    expect(await splitDocument(message("failed"), input)).toEqual({ kind: "skipped", reason: "job failed is FAILED" });
    expect(reads).toEqual([]);
    expect(jobs.jobs.get("failed")?.error).toBe("earlier");
  });

  it("fails the job with the reason when the document cannot be read, instead of retrying", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"));
    const corrupt = new ExtractionError("CORRUPT_DOCUMENT", "the PDF is damaged and cannot be read");
    const outcome = await splitDocument(message("j1"), deps(jobs, { [message("j1").key]: corrupt }));
    expect(outcome).toEqual({ kind: "failed", reason: "the PDF is damaged and cannot be read" });
    expect(jobs.jobs.get("j1")).toMatchObject({ state: "FAILED", error: "the PDF is damaged and cannot be read" });
  });

  it("fails the job of a document that holds no text", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"));
    const outcome = await splitDocument(message("j1"), deps(jobs, { [message("j1").key]: " \n\t " }));
    expect(outcome).toEqual({ kind: "failed", reason: "the document holds no text to index" });
    expect(jobs.jobs.get("j1")?.state).toBe("FAILED");
  });

  it("rethrows a transient fault (for the event source to retry) and leaves the job running", async () => {
    const jobs = new InMemoryJobs(job("j1", "UPLOADED"));
    const timeout = Object.assign(new Error("socket hang up"), { name: "TimeoutError" });
    await expect(splitDocument(message("j1"), deps(jobs, { [message("j1").key]: timeout }))).rejects.toThrow(
      "socket hang up",
    );
    expect(jobs.jobs.get("j1")?.state).toBe("UPLOADED");
    expect(jobs.jobs.get("j1")?.error).toBeUndefined();
  });
});
