import { type ChunkGroup, type EmbeddedGroup, encodeVector } from "../../../shared/domain/messages.ts";

/** A group of `size` chunks of job `jobId`'s document, as split publishes it. */
export function chunkGroup(jobId: string, ordinal: number, size: number, documentId = `doc-${jobId}`): ChunkGroup {
  return {
    jobId,
    tenant: "acme",
    groupId: `${jobId}:${ordinal}`,
    document: { documentId, collection: "default", contentType: "text/plain" },
    chunks: Array.from({ length: size }, (_, i) => {
      const index = ordinal * 100 + i;
      const text = `chunk ${index} of ${documentId} about topic${index % 5}`;
      return {
        chunkId: `${documentId}:${index}`,
        documentId,
        ordinal: index,
        page: 1,
        start: 0,
        end: text.length,
        text,
      };
    }),
  };
}

/** A deterministic unit vector for a text (4 dimensions), so tests can check which vector went where. */
export function vectorOf(text: string): Float32Array {
  const vector = new Float32Array(4);
  for (let i = 0; i < text.length; i++) vector[i % 4] = (vector[i % 4] as number) + text.charCodeAt(i);
  const norm = Math.hypot(...vector);
  return vector.map((value) => value / norm);
}

/** The group as embed publishes it: one vector per chunk, in order. */
export function embedded(group: ChunkGroup): EmbeddedGroup {
  return { ...group, vectors: group.chunks.map((chunk) => encodeVector(vectorOf(chunk.text))) };
}
