import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ObjectStore } from "../../shared/adapters/object-store.ts";
import { SegmentFiles } from "../../shared/adapters/segment-files.ts";
import { concatParts, encodeBatchSegment, Segment } from "../../shared/domain/segment.ts";
import type { DocumentInfo, EmbeddedChunk } from "../../shared/domain/types.ts";
import { s3Client, uniqueName } from "../support/clients.ts";

const s3 = s3Client();
const bucket = uniqueName("segment-files");
const objects = new ObjectStore(s3);
const dirs: string[] = [];
const cacheDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "segment-files-"));
  dirs.push(dir);
  return dir;
};

beforeAll(async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  s3.destroy();
});

function batch(n: number) {
  const chunks: EmbeddedChunk[] = [];
  const docs = new Map<string, DocumentInfo>();
  for (let i = 0; i < n; i += 1) {
    const documentId = `doc-${Math.floor(i / 3)}`;
    docs.set(documentId, { documentId, collection: "c", filename: `${documentId}.txt`, contentType: "text/plain" });
    const vector = Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j));
    chunks.push({
      chunkId: `${documentId}:${i % 3}`,
      documentId,
      collection: "c",
      ordinal: i % 3,
      page: 1,
      start: 0,
      end: 20,
      text: `chunk ${i} about ${i % 2 === 0 ? "lighthouses" : "harbours"} and tide number ${i}`,
      vector,
    });
  }
  return { chunks, docs };
}

describe("segment files on the S3 server", () => {
  it("opens a segment by byte ranges from S3, then from its local copy once downloaded", async () => {
    const { chunks, docs } = batch(60);
    const encoded = encodeBatchSegment("s1", chunks, docs);
    const key = "index/t/c/segments/s1.seg";
    await objects.write(bucket, key, encoded.parts);
    const dir = cacheDir();
    const files = new SegmentFiles(objects, bucket, { cacheDir: dir });

    const source = files.source(key, encoded.byteLength);
    // Remote reads coalesce nearby ranges (fewer GETs); local ones read exactly what is asked.
    expect(source.local).toBe(false);
    const remote = await Segment.open(source);
    const expected = (await remote.allChunks()).map((chunk) => [chunk.chunkId, chunk.text]);
    expect(expected).toHaveLength(60);

    await files.prefetch(key, encoded.byteLength);
    expect(readdirSync(dir)).toEqual([key.replaceAll("/", "_")]);
    expect(source.local).toBe(true);
    // From now on the local copy answers: the object can be gone from S3.
    await objects.delete(bucket, key);
    const local = await Segment.open(files.source(key, encoded.byteLength));
    expect((await local.allChunks()).map((chunk) => [chunk.chunkId, chunk.text])).toEqual(expected);
    // A new environment finds the complete copy on /tmp and uses it.
    const again = new SegmentFiles(objects, bucket, { cacheDir: dir });
    const reopened = await Segment.open(again.source(key, encoded.byteLength));
    expect(reopened.size).toBe(60);

    // Segments the manifest no longer lists are forgotten, and their files deleted.
    files.retain(new Set());
    expect(readdirSync(dir)).toEqual([]);
  });

  it("reads large ranges as parallel parts, exactly, and an empty range as nothing", async () => {
    const bytes = new Uint8Array(randomBytes(20 * 1024 * 1024 + 123));
    const key = "index/t/c/segments/big.seg";
    await objects.write(bucket, key, bytes);
    const files = new SegmentFiles(objects, bucket);
    const source = files.source(key, bytes.byteLength);
    const ranges = [
      { offset: 0, length: bytes.byteLength },
      { offset: 5, length: 0 },
      { offset: 9 * 1024 * 1024 - 7, length: 17 },
    ];
    const [whole, empty, straddling] = await source.read(ranges);
    expect(Buffer.compare(whole as Uint8Array, bytes)).toBe(0);
    expect(empty?.byteLength).toBe(0);
    expect(Buffer.from(straddling as Uint8Array)).toEqual(
      Buffer.from(bytes.subarray(9 * 1024 * 1024 - 7, 9 * 1024 * 1024 + 10)),
    );
  });

  it("keeps reading from S3 when a download does not match the manifest's size, and ignores stale files", async () => {
    const { chunks, docs } = batch(9);
    const encoded = encodeBatchSegment("s2", chunks, docs);
    const key = "index/t/c/segments/s2.seg";
    await objects.write(bucket, key, concatParts(encoded));
    const dir = cacheDir();
    // A leftover of an environment stopped mid-download, and a truncated copy.
    writeFileSync(join(dir, `${key.replaceAll("/", "_")}.part`), "partial");
    writeFileSync(join(dir, key.replaceAll("/", "_")), "short");
    const files = new SegmentFiles(objects, bucket, { cacheDir: dir });
    expect(existsSync(join(dir, `${key.replaceAll("/", "_")}.part`))).toBe(false);
    const segment = await Segment.open(files.source(key, encoded.byteLength));
    expect(segment.size).toBe(9);

    // A manifest that says the object is bigger than it is: the copy is not used, reads stay correct.
    const wrong = new SegmentFiles(objects, bucket, { cacheDir: cacheDir() });
    await wrong.prefetch(key, encoded.byteLength + 1);
    expect(readdirSync(dirs.at(-1) as string)).toEqual([]);
  });
});
