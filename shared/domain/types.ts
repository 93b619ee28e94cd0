/** Core domain types shared by the pipeline stages and search. */

/** A piece of a document, as produced by the split stage. */
export interface Chunk {
  /** Stable id: the same document content always yields the same chunk ids (`<documentId>:<ordinal>`). */
  chunkId: string;
  documentId: string;
  /** 0-based position of the chunk within its document. */
  ordinal: number;
  /** 1-based page number (1 for formats without pages). */
  page: number;
  /** Character offsets [start, end) into the document's extracted text. */
  start: number;
  end: number;
  text: string;
}

/** A chunk with its embedding, as published to `chunks.embedded` and stored in a segment. */
export interface EmbeddedChunk extends Chunk {
  collection: string;
  /** L2-normalized embedding; inner product = cosine similarity. */
  vector: Float32Array | readonly number[];
}

/** Per-document metadata kept with chunks so search can filter on it. */
export interface DocumentInfo {
  documentId: string;
  collection: string;
  contentType: string;
  filename?: string;
  metadata?: Record<string, string | number | boolean>;
  /**
   * Which upload of the document these chunks come from (its job id). A newer upload replaces
   * the document: the older revision is tombstoned as `documentKey(info)`.
   */
  revision?: string;
}

/** The identity tombstones use: a document's revision when known, else the document. */
export const documentKey = (info: Pick<DocumentInfo, "documentId" | "revision">) =>
  info.revision ? `${info.documentId}@${info.revision}` : info.documentId;
