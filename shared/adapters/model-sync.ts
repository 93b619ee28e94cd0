import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, normalize, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, paginateListObjectsV2, type S3Client } from "@aws-sdk/client-s3";

/**
 * Copies the model files under an S3 prefix into a local directory (in Lambda: /tmp, on a cold start), and
 * keeps them: a file whose size and ETag match what was fetched before is not fetched again, so a warm
 * environment, or a new one that finds /tmp as the last left it, costs one LIST. The directory keeps the
 * prefix's layout (`s3://b/models/reranker/onnx/model.onnx` → `<dir>/onnx/model.onnx`).
 */
export interface SyncResult {
  files: number;
  downloaded: number;
  bytes: number;
}

const MARKER = ".s3-sync.json";

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match?.[1]) throw new Error(`not an S3 URI (s3://bucket/prefix): ${uri}`);
  const prefix = match[2] ?? "";
  return { bucket: match[1], prefix: prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/` };
}

export async function syncS3Prefix(s3: S3Client, uri: string, dir: string): Promise<SyncResult> {
  const { bucket, prefix } = parseS3Uri(uri);
  mkdirSync(dir, { recursive: true });
  const markerPath = join(dir, MARKER);
  let previous: { uri?: string; etags?: Record<string, string> } = {};
  try {
    previous = JSON.parse(readFileSync(markerPath, "utf8"));
  } catch {
    // first sync into this directory
  }
  const known = previous.uri === uri ? (previous.etags ?? {}) : {};
  const etags: Record<string, string> = {};
  const result: SyncResult = { files: 0, downloaded: 0, bytes: 0 };
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) {
      const key = object.Key;
      if (!key || key.endsWith("/")) continue;
      const relative = key.slice(prefix.length);
      const local = normalize(join(dir, relative));
      // A key such as "a/../../x" must not write outside the directory.
      if (!local.startsWith(`${normalize(dir)}${sep}`)) throw new Error(`refusing to sync s3://${bucket}/${key}`);
      const etag = object.ETag ?? "";
      result.files++;
      etags[relative] = etag;
      if (known[relative] === etag && existsSync(local) && statSync(local).size === (object.Size ?? -1)) continue;
      mkdirSync(dirname(local), { recursive: true });
      const partial = `${local}.partial`;
      const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      try {
        await pipeline(response.Body as Readable, createWriteStream(partial));
        renameSync(partial, local);
      } catch (error) {
        rmSync(partial, { force: true });
        throw error;
      }
      result.downloaded++;
      result.bytes += object.Size ?? 0;
    }
  }
  writeFileSync(markerPath, JSON.stringify({ uri, etags }));
  return result;
}
