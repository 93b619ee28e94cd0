import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

/** A presigned upload as the API hands it to clients. */
/** A PUT carries `headers` (signed into the URL, so they must be sent as given); a POST form, `fields`. */
export type PresignedUpload =
  | { method: "PUT"; url: string; headers: Record<string, string> }
  | { method: "POST"; url: string; fields: Record<string, string> };

/** The object was replaced since the version a caller asked for (a conditional read failed). */
export class ObjectChanged extends Error {
  override name = "ObjectChanged";
}

/** The S3 operations the domain needs, behind one small adapter. */
export class ObjectStore {
  constructor(private readonly s3: S3Client) {}

  /**
   * A browser-style POST policy S3 itself enforces: the exact key, the declared content type
   * and a content-length-range up to the declared size, valid for `ttlSeconds`. With `PUT`, a
   * presigned PUT that signs the content type and length instead.
   */
  async presignUpload(options: {
    bucket: string;
    key: string;
    contentType: string;
    maxBytes: number;
    ttlSeconds: number;
    method: "PUT" | "POST";
  }): Promise<PresignedUpload> {
    const { bucket, key, contentType, maxBytes, ttlSeconds } = options;
    if (options.method === "POST") {
      const { url, fields } = await createPresignedPost(this.s3, {
        Bucket: bucket,
        Key: key,
        Conditions: [
          ["content-length-range", 1, maxBytes],
          ["eq", "$Content-Type", contentType],
        ],
        Fields: { "Content-Type": contentType },
        Expires: ttlSeconds,
      });
      return { method: "POST", url, fields };
    }
    // One-shot: `If-None-Match: *` is signed into the URL, so S3 refuses a second PUT to the key
    // (412 Precondition Failed) and a PUT without the header (signature mismatch).
    const url = await getSignedUrl(
      this.s3,
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        ContentType: contentType,
        ContentLength: maxBytes,
        IfNoneMatch: "*",
      }),
      { expiresIn: ttlSeconds, signableHeaders: new Set(["content-type", "content-length", "if-none-match"]) },
    );
    return { method: "PUT", url, headers: { "Content-Type": contentType, "If-None-Match": "*" } };
  }

  /**
   * An object's size and its first `bytes` bytes in one ranged GET (the size comes from the
   * Content-Range); undefined when the object does not exist.
   */
  async readStart(
    bucket: string,
    key: string,
    bytes: number,
  ): Promise<{ size: number; leading: Uint8Array; etag?: string } | undefined> {
    try {
      const object = await this.s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${bytes - 1}` }),
      );
      const leading = (await object.Body?.transformToByteArray()) ?? new Uint8Array();
      const total = object.ContentRange?.split("/")[1];
      return {
        size: total && total !== "*" ? Number(total) : leading.byteLength,
        leading,
        ...(object.ETag ? { etag: object.ETag } : {}),
      };
    } catch (error) {
      if (error instanceof NoSuchKey) return undefined;
      // No byte range of an empty object exists, so S3 refuses the range instead.
      if ((error as Error).name === "InvalidRange") return { size: 0, leading: new Uint8Array() };
      throw error;
    }
  }

  /** True when the object exists (a HEAD). */
  async exists(bucket: string, key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (error) {
      if (error instanceof NotFound || error instanceof NoSuchKey) return false;
      throw error;
    }
  }

  /**
   * The object's bytes (or a range of them). With `ifMatch`, only the version with that ETag:
   * another one is an ObjectChanged error.
   */
  async read(
    bucket: string,
    key: string,
    range?: { first: number; last: number },
    ifMatch?: string,
  ): Promise<Uint8Array> {
    let object: GetObjectCommandOutput;
    try {
      object = await this.s3.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.first}-${range.last}` } : {}),
          ...(ifMatch ? { IfMatch: ifMatch } : {}),
        }),
      );
    } catch (error) {
      if (ifMatch && (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) {
        throw new ObjectChanged(`s3://${bucket}/${key} is no longer the version ${ifMatch}`);
      }
      throw error;
    }
    if (!object.Body) throw new Error(`s3://${bucket}/${key} has no body`);
    return object.Body.transformToByteArray();
  }

  async readIfExists(bucket: string, key: string): Promise<Uint8Array | undefined> {
    try {
      return await this.read(bucket, key);
    } catch (error) {
      if (error instanceof NoSuchKey || error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /** Writes an object; a list of parts is streamed as one object (no copy into one buffer). */
  async write(
    bucket: string,
    key: string,
    body: Uint8Array | string | readonly Uint8Array[],
    contentType = "application/octet-stream",
  ): Promise<void> {
    if (Array.isArray(body)) {
      const parts = body as readonly Uint8Array[];
      const length = parts.reduce((sum, part) => sum + part.byteLength, 0);
      await this.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: Readable.from(streamChunks(parts)),
          ContentLength: length,
          ContentType: contentType,
        }),
      );
      return;
    }
    await this.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body as Uint8Array | string, ContentType: contentType }),
    );
  }

  /** Streams an object into a local file. */
  async download(bucket: string, key: string, file: string): Promise<void> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!object.Body) throw new Error(`s3://${bucket}/${key} has no body`);
    await pipeline(object.Body as Readable, createWriteStream(file));
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }

  async list(bucket: string, prefix: string): Promise<{ key: string; size: number; lastModified?: Date }[]> {
    const objects: { key: string; size: number; lastModified?: Date }[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key) objects.push({ key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }
}

/**
 * The parts as stream chunks of at least 64 KB (small parts joined): the SDK's chunked upload refuses
 * chunks under 8 KB except the last.
 */
function* streamChunks(parts: readonly Uint8Array[]): Generator<Uint8Array> {
  const minimum = 64 * 1024;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for (const part of parts) {
    if (part.byteLength === 0) continue;
    if (pendingBytes === 0 && part.byteLength >= minimum) {
      yield part;
      continue;
    }
    pending.push(part);
    pendingBytes += part.byteLength;
    if (pendingBytes >= minimum) {
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}
