import type { BatchCount, BatchRef, CountedStage, JobStore } from "../../../shared/adapters/job-store.ts";
import type { ManifestStore } from "../../../shared/adapters/manifest-store.ts";
import { isTerminal, type Job, type JobState, statesBefore } from "../../../shared/domain/jobs.ts";
import { type Manifest, ManifestConflict, type SegmentRef } from "../../../shared/domain/manifest.ts";
import type { SegmentBlobs } from "../../../shared/stages/ports.ts";

/**
 * In-memory stand-ins for the narrow ports the stages take, with the semantics of the DynamoDB
 * and S3 adapters they replace (checked against the real servers in test/integration): forward-
 * only job states, a counter that counts each batch once by its marker, a manifest that lists a
 * segment once and refuses a swap made against an old version.
 */

export function job(jobId: string, state: JobState, fields: Partial<Job> = {}): Job {
  const at = "2026-01-01T00:00:00.000Z";
  return {
    jobId,
    tenant: "acme",
    documentId: `doc-${jobId}`,
    collection: "default",
    filename: `${jobId}.txt`,
    contentType: "text/plain",
    size: 10,
    metadata: {},
    objectKey: `uploads/acme/doc-${jobId}/${jobId}.txt`,
    state,
    chunksTotal: 0,
    chunksEmbedded: 0,
    chunksIndexed: 0,
    stages: { [state]: at },
    createdAt: at,
    updatedAt: at,
    ...fields,
  };
}

type JobPort = Pick<
  JobStore,
  | "get"
  | "getMany"
  | "advance"
  | "fail"
  | "uncounted"
  | "countBatches"
  | "countIndexed"
  | "completeIfDone"
  | "noteError"
  | "noteErrors"
>;

export class InMemoryJobs implements JobPort {
  readonly jobs = new Map<string, Job>();
  /** `<stage>\n<jobId>\n<batchId>` of every batch counted. */
  readonly markers = new Set<string>();
  /** Every call, in order, by method name: what a stage asked of the store. */
  readonly calls: string[] = [];

  constructor(...jobs: Job[]) {
    for (const item of jobs) this.jobs.set(item.jobId, structuredClone(item));
  }

  private marker = (stage: CountedStage, batch: BatchRef) => `${stage}\n${batch.jobId}\n${batch.batchId}`;

  async get(jobId: string): Promise<Job | undefined> {
    this.calls.push("get");
    const found = this.jobs.get(jobId);
    return found && structuredClone(found);
  }

  async getMany(jobIds: Iterable<string>): Promise<Map<string, Job>> {
    this.calls.push("getMany");
    const found = new Map<string, Job>();
    for (const jobId of jobIds) {
      const item = this.jobs.get(jobId);
      if (item) found.set(jobId, structuredClone(item));
    }
    return found;
  }

  async advance(
    jobId: string,
    to: JobState,
    set: Partial<Pick<Job, "chunksTotal" | "size" | "error">> = {},
  ): Promise<boolean> {
    this.calls.push("advance");
    const item = this.jobs.get(jobId);
    if (!item || !statesBefore(to).includes(item.state)) return false;
    Object.assign(item, set, { state: to, stages: { ...item.stages, [to]: new Date().toISOString() } });
    return true;
  }

  async fail(jobId: string, reason: string): Promise<boolean> {
    return this.advance(jobId, "FAILED", { error: reason });
  }

  async uncounted<B extends BatchRef>(stage: CountedStage, batches: B[]): Promise<B[]> {
    this.calls.push("uncounted");
    return batches.filter((batch) => !this.markers.has(this.marker(stage, batch)));
  }

  private count(stage: CountedStage, batch: BatchCount): boolean {
    const item = this.jobs.get(batch.jobId);
    const marker = this.marker(stage, batch);
    if (!item || this.markers.has(marker)) return false;
    this.markers.add(marker);
    if (stage === "embedded") item.chunksEmbedded += batch.chunks;
    else item.chunksIndexed += batch.chunks;
    return true;
  }

  async countBatches<B extends BatchCount>(stage: CountedStage, batches: B[]): Promise<B[]> {
    this.calls.push("countBatches");
    return batches.filter((batch) => this.count(stage, batch));
  }

  async countIndexed<B extends BatchCount>(
    batches: B[],
    seen: ReadonlyMap<string, Job>,
  ): Promise<{ counted: B[]; finished: Job[] }> {
    this.calls.push("countIndexed");
    const counted = batches.filter((batch) => this.count("indexed", batch));
    const finished: Job[] = [];
    for (const jobId of new Set(counted.map((batch) => batch.jobId))) {
      await this.advance(jobId, "INDEXING");
      const item = this.jobs.get(jobId);
      const done = item && item.chunksTotal > 0 && item.chunksIndexed >= item.chunksTotal && !isTerminal(item.state);
      if (done) finished.push(seen.get(jobId) ?? item);
    }
    return { counted, finished };
  }

  async completeIfDone(jobId: string): Promise<boolean> {
    this.calls.push("completeIfDone");
    const item = this.jobs.get(jobId);
    if (!item || item.chunksTotal === 0 || item.chunksIndexed < item.chunksTotal) return false;
    if (item.state !== "EMBEDDING" && item.state !== "INDEXING") return false;
    return this.advance(jobId, "COMPLETED");
  }

  async noteError(jobId: string, message: string): Promise<void> {
    const item = this.jobs.get(jobId);
    if (item) item.lastError = message;
  }

  async noteErrors(jobIds: Iterable<string>, message: string): Promise<void> {
    for (const jobId of jobIds) await this.noteError(jobId, message);
  }
}

type ManifestPort = Pick<
  ManifestStore,
  "get" | "addSegment" | "addTombstone" | "replaceSegments" | "promoteRevision" | "revealRevision"
>;

export class InMemoryManifests implements ManifestPort {
  private readonly manifests = new Map<string, Manifest>();
  /** Live revision of each document: `<tenant>\n<documentId>`. */
  readonly live = new Map<string, { id: string; collection: string; createdAt: string }>();

  private manifest(tenant: string, collection: string): Manifest {
    const key = `${tenant}\n${collection}`;
    let found = this.manifests.get(key);
    if (!found) {
      found = { tenant, collection, version: 0, segments: [], tombstones: [], pending: [] };
      this.manifests.set(key, found);
    }
    return found;
  }

  async get(tenant: string, collection: string): Promise<Manifest> {
    return structuredClone(this.manifest(tenant, collection));
  }

  async addSegment(
    tenant: string,
    collection: string,
    segment: SegmentRef,
    pendingRevisions: string[] = [],
  ): Promise<boolean> {
    const manifest = this.manifest(tenant, collection);
    if (manifest.segments.some((listed) => listed.id === segment.id)) return false;
    manifest.segments.push(segment);
    manifest.pending = [...new Set([...(manifest.pending ?? []), ...pendingRevisions])].sort();
    manifest.version++;
    return true;
  }

  async revealRevision(tenant: string, collection: string, revision: string, replaced?: string): Promise<void> {
    const manifest = this.manifest(tenant, collection);
    manifest.pending = (manifest.pending ?? []).filter((pending) => pending !== revision);
    if (replaced && !manifest.tombstones.includes(replaced))
      manifest.tombstones = [...manifest.tombstones, replaced].sort();
    manifest.version++;
  }

  async addTombstone(tenant: string, collection: string, revision: string): Promise<void> {
    const manifest = this.manifest(tenant, collection);
    if (!manifest.tombstones.includes(revision)) manifest.tombstones = [...manifest.tombstones, revision].sort();
    manifest.version++;
  }

  async replaceSegments(seen: Manifest, removed: string[], added: SegmentRef, purged: string[]): Promise<void> {
    const manifest = this.manifest(seen.tenant, seen.collection);
    if (manifest.version !== seen.version) throw new ManifestConflict("the manifest changed meanwhile");
    manifest.segments = [...manifest.segments.filter((segment) => !removed.includes(segment.id)), added];
    manifest.tombstones = manifest.tombstones.filter((revision) => !purged.includes(revision));
    manifest.version++;
  }

  async promoteRevision(
    tenant: string,
    documentId: string,
    revision: { id: string; collection: string; createdAt: string },
  ): Promise<{ id: string; collection: string } | undefined> {
    const key = `${tenant}\n${documentId}`;
    const previous = this.live.get(key);
    // As the conditional update: unless this upload is newer than the live one, it is the one replaced.
    if (previous && previous.createdAt >= revision.createdAt)
      return { id: revision.id, collection: revision.collection };
    this.live.set(key, revision);
    return previous ? { id: previous.id, collection: previous.collection } : undefined;
  }
}

export class InMemoryBlobs implements SegmentBlobs {
  readonly objects = new Map<string, Uint8Array>();
  writes = 0;

  async write(key: string, body: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.writes++;
    this.objects.set(key, Buffer.concat(body instanceof Uint8Array ? [body] : [...body]));
  }

  async read(key: string): Promise<Uint8Array> {
    const bytes = this.objects.get(key);
    if (!bytes) throw Object.assign(new Error(`NoSuchKey: ${key}`), { name: "NoSuchKey" });
    return bytes;
  }
}
