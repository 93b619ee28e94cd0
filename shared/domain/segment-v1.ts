/**
 * Segment format version 1, kept so collections written before version 2 stay searchable: a reader that
 * turns a v1 object into the chunks and vectors it holds (a v1 segment is then rebuilt in the current
 * format, in memory when search opens it and for good when compaction rewrites it), and the v1 writer,
 * used only by tests and by the benchmark's baseline.
 *
 * v1 layout: "DDSG", u16 version 1, u16 flags, u32 header length, a JSON header with a section table
 * ({name, offset, length, crc32, encoding}, offsets from the end of the header), then the sections:
 * "faiss" (an IndexFlatIP buffer, whose tail holds the vectors), "chunks" (gzip JSON, columnar) and
 * "bm25" (gzip JSON wink export — not needed to rebuild: BM25 is recomputed from the texts).
 */
import { crc32, gunzipSync, gzipSync } from "node:zlib";
import { Bm25Index } from "./bm25.ts";
import type { Chunk, DocumentInfo } from "./types.ts";
import { flatVectorsFromFaissBuffer, VectorIndex } from "./vector-index.ts";

export const SEGMENT_V1 = 1;
const PREAMBLE_BYTES = 12;

interface SectionEntry {
  name: "faiss" | "chunks" | "bm25";
  offset: number;
  length: number;
  crc32: number;
  encoding: "raw" | "gzip";
}

export interface SegmentV1Header {
  formatVersion: number;
  segmentId: string;
  collection: string | null;
  chunkCount: number;
  documentCount: number;
  dimension: number;
  /** The embedding model of the vectors (registry id), when recorded. */
  model?: string;
  createdAt: string;
  sourceBatchId?: string;
  mergedFrom?: string[];
  bm25Kind: "wink" | "exact";
}

interface ChunkStoreJson {
  documents: DocumentInfo[];
  chunks: {
    chunkId: string[];
    document: number[];
    ordinal: number[];
    page: number[];
    start: number[];
    end: number[];
    text: string[];
  };
}

/** What a v1 segment holds: its header, and per chunk its position, text, document and vector. */
export interface SegmentV1Contents {
  header: SegmentV1Header;
  entries: { chunk: Chunk; info: DocumentInfo; vector: Float32Array }[];
}

/** Decodes a v1 segment (checks magic, version, sizes and checksums). */
export function decodeSegmentV1(bytes: Uint8Array): SegmentV1Contents {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < PREAMBLE_BYTES || buffer.toString("latin1", 0, 4) !== "DDSG") {
    throw new Error("not a DataDistiller segment (bad magic)");
  }
  if (buffer.readUInt16LE(4) !== SEGMENT_V1) throw new Error(`not a version 1 segment`);
  const headerLength = buffer.readUInt32LE(8);
  if (PREAMBLE_BYTES + headerLength > buffer.length) throw new Error("truncated segment header");
  const { sections, ...header } = JSON.parse(
    buffer.toString("utf8", PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength),
  ) as SegmentV1Header & { sections: SectionEntry[] };
  const dataStart = PREAMBLE_BYTES + headerLength;
  const section = (name: SectionEntry["name"]): Uint8Array => {
    const entry = sections.find((s) => s.name === name);
    if (entry === undefined) throw new Error(`segment ${header.segmentId}: missing section ${name}`);
    const start = dataStart + entry.offset;
    if (start + entry.length > bytes.length) throw new Error(`segment ${header.segmentId}: truncated section ${name}`);
    const body = bytes.subarray(start, start + entry.length);
    if (crc32(body) !== entry.crc32) throw new Error(`segment ${header.segmentId}: checksum mismatch in ${name}`);
    return entry.encoding === "gzip" ? gunzipSync(body) : body;
  };
  const store = JSON.parse(Buffer.from(section("chunks")).toString("utf8")) as ChunkStoreJson;
  const count = store.chunks.chunkId.length;
  if (count !== header.chunkCount) throw new Error(`segment ${header.segmentId}: chunk count mismatch`);
  const faiss = section("faiss");
  const vectors = count === 0 ? new Float32Array(0) : flatVectorsFromFaissBuffer(faiss, count, header.dimension);
  const entries = store.chunks.chunkId.map((chunkId, i) => {
    const info = store.documents[store.chunks.document[i] as number] as DocumentInfo;
    return {
      chunk: {
        chunkId,
        documentId: info.documentId,
        ordinal: store.chunks.ordinal[i] as number,
        page: store.chunks.page[i] as number,
        start: store.chunks.start[i] as number,
        end: store.chunks.end[i] as number,
        text: store.chunks.text[i] as string,
      },
      info,
      vector: vectors.subarray(i * header.dimension, (i + 1) * header.dimension),
    };
  });
  return { header, entries };
}

/**
 * Writes a v1 segment (as the code before version 2 did): tests use it to check that old collections
 * keep working, the benchmark to measure the old format beside the new one.
 */
export function encodeSegmentV1(
  header: Omit<SegmentV1Header, "formatVersion" | "chunkCount" | "documentCount" | "bm25Kind">,
  entries: readonly { chunk: Chunk; info: DocumentInfo; vector: Float32Array | readonly number[] }[],
): Uint8Array {
  const documents: DocumentInfo[] = [];
  const docIndex = new Map<string, number>();
  const columns: ChunkStoreJson["chunks"] = {
    chunkId: [],
    document: [],
    ordinal: [],
    page: [],
    start: [],
    end: [],
    text: [],
  };
  for (const { chunk, info } of entries) {
    const key = info.revision ? `${info.documentId}@${info.revision}` : info.documentId;
    let d = docIndex.get(key);
    if (d === undefined) {
      d = documents.length;
      docIndex.set(key, d);
      documents.push(info);
    }
    columns.chunkId.push(chunk.chunkId);
    columns.document.push(d);
    columns.ordinal.push(chunk.ordinal);
    columns.page.push(chunk.page);
    columns.start.push(chunk.start);
    columns.end.push(chunk.end);
    columns.text.push(chunk.text);
  }
  const ids = entries.map((entry) => entry.chunk.chunkId);
  const bm25 = Bm25Index.build(entries.map((entry) => ({ id: entry.chunk.chunkId, text: entry.chunk.text })));
  const vectors = VectorIndex.build(
    ids,
    entries.map((entry) => entry.vector),
    { dimension: header.dimension },
  );
  const bodies: Array<[SectionEntry["name"], SectionEntry["encoding"], Uint8Array]> = [
    ["faiss", "raw", vectors.toBuffer()],
    ["chunks", "gzip", gzipSync(JSON.stringify({ documents, chunks: columns }))],
    ["bm25", "gzip", gzipSync(bm25.toJSON())],
  ];
  const sections: SectionEntry[] = [];
  let offset = 0;
  for (const [name, encoding, body] of bodies) {
    sections.push({ name, offset, length: body.length, crc32: crc32(body), encoding });
    offset += body.length;
  }
  const full: SegmentV1Header & { sections: SectionEntry[] } = {
    formatVersion: SEGMENT_V1,
    ...header,
    chunkCount: entries.length,
    documentCount: new Set(entries.map((entry) => entry.chunk.documentId)).size,
    bm25Kind: bm25.kind,
    sections,
  };
  const headerBytes = Buffer.from(JSON.stringify(full), "utf8");
  const out = Buffer.allocUnsafe(PREAMBLE_BYTES + headerBytes.length + offset);
  out.write("DDSG", 0, "latin1");
  out.writeUInt16LE(SEGMENT_V1, 4);
  out.writeUInt16LE(0, 6);
  out.writeUInt32LE(headerBytes.length, 8);
  headerBytes.copy(out, PREAMBLE_BYTES);
  let at = PREAMBLE_BYTES + headerBytes.length;
  for (const [, , body] of bodies) {
    out.set(body, at);
    at += body.length;
  }
  return out;
}
