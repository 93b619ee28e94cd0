import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import type { ByteRange, ByteSource } from "../domain/segment.ts";
import type { ObjectStore } from "./object-store.ts";

/** Ranges at least this long are fetched as several parallel GETs (S3 serves each connection at ~100 MB/s). */
const PART_BYTES = 8 * 1024 * 1024;
/** GETs in flight per batch of ranges. */
const CONCURRENCY = 32;

export interface SegmentFilesOptions {
  /** Where whole segments are cached (Lambda: under /tmp); none = byte ranges from S3 only. */
  cacheDir?: string;
  /** Leave at least this much free on the cache's file system (default 256 MB). */
  reserveBytes?: number;
}

interface Cached {
  size: number;
  /** Open descriptor of the complete local copy, once there is one. */
  fd?: number;
  download?: Promise<void>;
}

/**
 * Segment objects read by byte range: from S3 until a local copy exists, then from that copy. A segment
 * opened for search is downloaded whole in the background (`prefetch`) to the cache directory, so a
 * warm container answers from local reads (the page cache) instead of S3 round trips; files of segments
 * the manifest no longer lists are deleted (`retain`). Local reads are synchronous `pread`s: a query
 * reads a few hundred small ranges, for which the thread pool's hand-offs would cost more than the reads.
 */
export class SegmentFiles {
  private readonly cached = new Map<string, Cached>();

  constructor(
    private readonly objects: Pick<ObjectStore, "read" | "download">,
    private readonly bucket: string,
    private readonly options: SegmentFilesOptions = {},
  ) {
    if (options.cacheDir !== undefined) {
      mkdirSync(options.cacheDir, { recursive: true });
      // Leftovers of an environment that was stopped mid-download.
      for (const name of readdirSync(options.cacheDir)) {
        if (name.endsWith(".part")) rmSync(join(options.cacheDir, name), { force: true });
      }
    }
  }

  private fileOf(key: string): string | undefined {
    return this.options.cacheDir === undefined ? undefined : join(this.options.cacheDir, key.replaceAll("/", "_"));
  }

  private entry(key: string, size: number): Cached {
    let entry = this.cached.get(key);
    if (entry === undefined) {
      entry = { size };
      const file = this.fileOf(key);
      if (file !== undefined && existsSync(file) && statSync(file).size === size) entry.fd = openSync(file, "r");
      this.cached.set(key, entry);
    }
    return entry;
  }

  /** A byte source for the segment object `key` of `size` bytes. */
  source(key: string, size: number): ByteSource {
    const entry = this.entry(key, size);
    return {
      size,
      // Local once the whole object is in the cache.
      get local() {
        return entry.fd !== undefined;
      },
      read: (ranges) =>
        entry.fd !== undefined ? Promise.resolve(readLocal(entry.fd, ranges)) : this.readRemote(key, ranges),
    };
  }

  /** Whether a prefetch now would start downloading the object (caching on, not cached, not on its way). */
  wouldDownload(key: string, size: number): boolean {
    const entry = this.entry(key, size);
    return this.fileOf(key) !== undefined && entry.fd === undefined && entry.download === undefined;
  }

  /** Starts downloading the whole object to the cache, if there is room; returns when it is done (or failed). */
  prefetch(key: string, size: number): Promise<void> {
    const entry = this.entry(key, size);
    const file = this.fileOf(key);
    if (file === undefined || entry.fd !== undefined) return Promise.resolve();
    if (entry.download !== undefined) return entry.download;
    const dir = this.options.cacheDir as string;
    const free = freeBytes(dir);
    if (free !== undefined && free - size < (this.options.reserveBytes ?? 256 * 1024 * 1024)) return Promise.resolve();
    const part = `${file}.part`;
    entry.download = this.objects
      .download(this.bucket, key, part)
      .then(() => {
        if (statSync(part).size !== size) throw new Error(`downloaded ${key}: size differs from the manifest's`);
        renameSync(part, file);
        if (this.cached.get(key) === entry) entry.fd = openSync(file, "r");
        else rmSync(file, { force: true });
      })
      .catch(() => {
        // Reads go on from S3; a later prefetch tries again.
        rmSync(part, { force: true });
      })
      .finally(() => {
        entry.download = undefined;
      });
    return entry.download;
  }

  /** Forgets (and deletes the local copies of) every cached object not in `keys`. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, entry] of this.cached) {
      if (keys.has(key)) continue;
      this.cached.delete(key);
      if (entry.fd !== undefined) closeSync(entry.fd);
      const file = this.fileOf(key);
      if (file !== undefined) rmSync(file, { force: true });
    }
  }

  private async readRemote(key: string, ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    // Large ranges become several parts read in parallel.
    const parts: { range: number; offset: number; length: number }[] = [];
    ranges.forEach(({ offset, length }, range) => {
      for (let at = 0; at < length || (length === 0 && at === 0); at += PART_BYTES) {
        parts.push({ range, offset: offset + at, length: Math.min(PART_BYTES, length - at) });
        if (length === 0) break;
      }
    });
    const bodies = new Array<Uint8Array>(parts.length);
    let next = 0;
    const worker = async () => {
      while (next < parts.length) {
        const i = next++;
        const part = parts[i] as (typeof parts)[number];
        bodies[i] =
          part.length === 0
            ? new Uint8Array(0)
            : await this.objects.read(this.bucket, key, { first: part.offset, last: part.offset + part.length - 1 });
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, parts.length) }, worker));
    const out = ranges.map(({ length }) => new Uint8Array(length));
    const filled = ranges.map(() => 0);
    parts.forEach((part, i) => {
      const body = bodies[i] as Uint8Array;
      if (body.length !== part.length)
        throw new Error(`s3 range read of ${key} returned ${body.length} of ${part.length} bytes`);
      (out[part.range] as Uint8Array).set(body, filled[part.range]);
      filled[part.range] = (filled[part.range] as number) + body.length;
    });
    return out;
  }
}

function readLocal(fd: number, ranges: readonly ByteRange[]): Uint8Array[] {
  return ranges.map(({ offset, length }) => {
    const buffer = Buffer.allocUnsafeSlow(length);
    let done = 0;
    while (done < length) {
      const read = readSync(fd, buffer, done, length - done, offset + done);
      if (read === 0) throw new Error("segment file shorter than expected");
      done += read;
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  });
}

function freeBytes(dir: string): number | undefined {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}
