import { z } from "zod";

/** The messages on the pipeline's topics, validated where they are consumed. */

const documentInfo = z.object({
  documentId: z.string().min(1),
  collection: z.string().min(1),
  contentType: z.string().min(1),
  filename: z.string().optional(),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});

const chunk = z.object({
  chunkId: z.string().min(1),
  documentId: z.string().min(1),
  ordinal: z.number().int().min(0),
  page: z.number().int().min(1),
  start: z.number().int().min(0),
  end: z.number().int().min(0),
  text: z.string(),
});

/** documents.uploaded, keyed by document id: a document landed and passed its checks. */
export const documentUploaded = z.object({
  jobId: z.string().min(1),
  tenant: z.string().min(1),
  document: documentInfo,
  bucket: z.string().min(1),
  key: z.string().min(1),
  size: z.number().int().min(0),
  /** The ETag of the object on-upload accepted: split reads that version or fails the job. */
  etag: z.string().optional(),
});
export type DocumentUploaded = z.infer<typeof documentUploaded>;

/** The index a group is embedded for: its id within the collection and the model of its vectors. */
const indexTarget = z.object({ index: z.string().min(1), model: z.string().min(1) });
export type IndexTarget = z.infer<typeof indexTarget>;

/** chunks.to-embed, keyed by group id: one group of a document's chunks, the unit of embedding work. */
export const chunkGroup = z.object({
  jobId: z.string().min(1),
  tenant: z.string().min(1),
  /** `<jobId>:<group ordinal>`: stable, so a re-split produces the same ids and counts once. */
  groupId: z.string().min(1),
  document: documentInfo,
  chunks: z.array(chunk).min(1),
  /**
   * The index (and so the model) the group is embedded for. Absent on a fresh upload's groups:
   * the embed stage sets the collection's active index. Groups from before models were recorded
   * have none and carry the legacy model's vectors for the first index.
   */
  target: indexTarget.optional(),
  /** The document revision the chunks belong to, when it is not the job's (re-embedded chunks). */
  revision: z.string().min(1).optional(),
  /** A copy of chunks already indexed elsewhere (a migration's re-embedding, an upload landing in a second index). */
  copy: z.boolean().optional(),
});
export type ChunkGroup = z.infer<typeof chunkGroup>;

/** chunks.embedded, keyed by tenant/collection: the group with a vector per chunk. */
export const embeddedGroup = chunkGroup.extend({
  /** Float32 little-endian vectors, base64, one per chunk in order: compact and fast to decode. */
  vectors: z.array(z.string().min(1)),
});
export type EmbeddedGroup = z.infer<typeof embeddedGroup>;

/**
 * chunks.embedded, keyed by tenant/collection like the groups: a migration's unit of fan-out.
 * The index stage (the collection's one writer) reads a segment of the index being migrated from
 * and sends its stored chunks, in groups, to chunks.to-embed for the new index.
 */
export const reembedSegment = z.object({
  kind: z.literal("reembed"),
  /** The migration's job, which counts the re-embedded chunks. */
  jobId: z.string().min(1),
  tenant: z.string().min(1),
  collection: z.string().min(1),
  segment: z.object({ id: z.string().min(1), key: z.string().min(1), chunks: z.number().int().min(0) }),
  target: indexTarget,
});
export type ReembedSegment = z.infer<typeof reembedSegment>;

/** What chunks.embedded carries: embedded groups, and a migration's re-embedding requests. */
export const indexMessage = z.union([reembedSegment, embeddedGroup]);
export type IndexMessage = z.infer<typeof indexMessage>;
export const isReembed = (message: IndexMessage): message is ReembedSegment => "kind" in message;

export const encodeVector = (vector: Float32Array): string =>
  Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64");

export function decodeVector(encoded: string): Float32Array {
  const bytes = Buffer.from(encoded, "base64");
  // Copy into an aligned buffer: Float32Array needs a 4-byte aligned offset.
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The key of chunks.embedded: one collection's groups stay in one partition, in order. */
export const collectionKey = (tenant: string, collection: string) => `${tenant}/${collection}`;

/** Parses a topic message; malformed JSON or a wrong shape is a failed result, never an exception. */
export function parseMessage<S extends z.ZodType>(schema: S, value: string) {
  try {
    return schema.safeParse(JSON.parse(value));
  } catch (error) {
    return { success: false as const, error: { issues: [{ message: `not JSON: ${(error as Error).message}` }] } };
  }
}
