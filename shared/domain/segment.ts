/**
 * Index segments: immutable units of a collection's index, one S3 object each.
 *
 * A segment holds, for the same n chunks in the same order (chunk ordinal = faiss label = BM25 ordinal):
 * the faiss `IndexFlatIP` buffer (which also carries the normalised vectors, so compaction can rebuild
 * from them), the BM25 model (a wink-bm25-text-search export, or the exact format for < 3 chunks), and
 * the chunk store (ids, positions, text, and each document's content type, metadata and revision for filtering).
 *
 * Documents are identified by `documentKey(info)` (`<documentId>@<revision>`, or the bare id when the info
 * has no revision), so two revisions (uploads) of one document can live in one segment as two documents,
 * each with its own info and chunks. Their chunk ids share one scheme (`<documentId>:<ordinal>`), so a
 * segment holds at most one copy of each chunk id, whichever revision it comes from.
 *
 * Binary format (all integers little-endian):
 *
 *   offset 0   4 bytes   magic "DDSG"
 *          4   u16       format version (SEGMENT_FORMAT_VERSION)
 *          6   u16       flags (0)
 *          8   u32       H = byte length of the header
 *         12   H bytes   header: UTF-8 JSON `SegmentHeader` plus `sections`, a table of
 *                        {name, offset, length, crc32, encoding}; offsets count from 12 + H
 *     12 + H   ...       the sections, back to back:
 *                          "faiss"  raw   faiss `Index.toBuffer()` (empty when the segment is empty)
 *                          "chunks" gzip  JSON chunk store (columnar; each document revision stored once;
 *                                         a document without `revision` decodes with none)
 *                          "bm25"   gzip  JSON BM25 model (`Bm25Index.toJSON()`)
 *
 * Decoding parses each section once into search-ready structures; nothing is parsed per query.
 */
import { crc32, gunzipSync, gzipSync } from "node:zlib";
import { Bm25Index } from "./bm25.ts";
import { type Chunk, type DocumentInfo, documentKey, type EmbeddedChunk } from "./types.ts";
import { VectorIndex, type VectorInput } from "./vector-index.ts";

export const SEGMENT_MAGIC = "DDSG";
export const SEGMENT_FORMAT_VERSION = 1;
const PREAMBLE_BYTES = 12;

export type MetadataValue = string | number | boolean;

/** A chunk as a segment stores it: its position and text plus its document's filterable attributes. */
export interface StoredChunk extends Chunk {
  collection: string;
  contentType: string;
  filename?: string;
  /** Shared by all chunks of the document: do not mutate. */
  metadata?: Readonly<Record<string, MetadataValue>>;
  /** The document revision (upload) the chunk belongs to; `documentKey(chunk)` is its document's key. */
  revision?: string;
}

export interface SegmentHeader {
  formatVersion: number;
  segmentId: string;
  /** The collection every chunk belongs to (null only for an empty segment built without one). */
  collection: string | null;
  chunkCount: number;
  documentCount: number;
  /** Embedding dimension (0 for an empty segment). */
  dimension: number;
  /** ISO-8601 creation time; among segments holding the same chunk id, the newest wins. */
  createdAt: string;
  /** The batch the segment was built from (e.g. topic-partition-offset range), for idempotent writes. */
  sourceBatchId?: string;
  /** Segments a compaction merged into this one. */
  mergedFrom?: string[];
  bm25Kind: "wink" | "exact";
}

export interface SegmentDocument {
  info: DocumentInfo;
  /** Ordinals of the document's chunks in this segment. */
  ordinals: number[];
}

export interface Segment {
  readonly header: SegmentHeader;
  /** Chunks by ordinal (= faiss label). */
  readonly chunks: readonly StoredChunk[];
  readonly bm25: Bm25Index;
  readonly vectors: VectorIndex;
  /** chunk id → ordinal. */
  readonly chunkOrdinals: ReadonlyMap<string, number>;
  /**
   * `documentKey(info)` → the document's info and chunk ordinals: one entry per revision of a document
   * (the bare document id for chunks without a revision).
   */
  readonly documents: ReadonlyMap<string, SegmentDocument>;
  /** Public document id → the keys in `documents` of its revisions in this segment. */
  readonly documentKeys: ReadonlyMap<string, readonly string[]>;
  /** BM25 ordinal → chunk ordinal, when the BM25 model orders documents differently (normally identity: undefined). */
  readonly bm25ToChunk?: Int32Array;
}

export interface BuildSegmentOptions {
  /** Defaults to now. */
  createdAt?: Date | string;
  sourceBatchId?: string;
  /** For an empty segment: the collection and embedding dimension to record. */
  collection?: string;
  dimension?: number;
}

interface SectionEntry {
  name: "faiss" | "chunks" | "bm25";
  offset: number;
  length: number;
  crc32: number;
  encoding: "raw" | "gzip";
}

interface EncodedHeader extends SegmentHeader {
  sections: SectionEntry[];
}

/** The chunk store as serialised: each document revision once, chunks as columns. */
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

interface Entry {
  chunk: Chunk;
  info: DocumentInfo;
  vector: VectorInput;
}

function isoTime(value: Date | string | undefined): string {
  if (value === undefined) return new Date().toISOString();
  const date = typeof value === "string" ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new Error(`invalid createdAt ${String(value)}`);
  return date.toISOString();
}

function storedChunk(chunk: Chunk, info: DocumentInfo): StoredChunk {
  const stored: StoredChunk = {
    chunkId: chunk.chunkId,
    documentId: chunk.documentId,
    ordinal: chunk.ordinal,
    page: chunk.page,
    start: chunk.start,
    end: chunk.end,
    text: chunk.text,
    collection: info.collection,
    contentType: info.contentType,
  };
  if (info.filename !== undefined) stored.filename = info.filename;
  if (info.metadata !== undefined) stored.metadata = info.metadata;
  if (info.revision !== undefined) stored.revision = info.revision;
  return stored;
}

function documentInfo(info: DocumentInfo): DocumentInfo {
  const copy: DocumentInfo = {
    documentId: info.documentId,
    collection: info.collection,
    contentType: info.contentType,
  };
  if (info.filename !== undefined) copy.filename = info.filename;
  if (info.metadata !== undefined) copy.metadata = Object.freeze({ ...info.metadata });
  if (info.revision !== undefined) copy.revision = info.revision;
  return copy;
}

/** Indexes the maps every segment carries; `bm25` must contain the same ids as `chunks`. */
function assemble(header: SegmentHeader, chunks: StoredChunk[], bm25: Bm25Index, vectors: VectorIndex): Segment {
  const chunkOrdinals = new Map<string, number>();
  const documents = new Map<string, SegmentDocument>();
  const documentKeys = new Map<string, string[]>();
  let doc: SegmentDocument | undefined;
  chunks.forEach((chunk, ordinal) => {
    chunkOrdinals.set(chunk.chunkId, ordinal);
    // Chunks come grouped by document: only look the document up when it changes.
    if (doc === undefined || doc.info.documentId !== chunk.documentId || doc.info.revision !== chunk.revision) {
      const key = documentKey(chunk);
      doc = documents.get(key);
      if (doc === undefined) {
        const info: DocumentInfo = {
          documentId: chunk.documentId,
          collection: chunk.collection,
          contentType: chunk.contentType,
        };
        if (chunk.filename !== undefined) info.filename = chunk.filename;
        if (chunk.metadata !== undefined) info.metadata = chunk.metadata as Record<string, MetadataValue>;
        if (chunk.revision !== undefined) info.revision = chunk.revision;
        doc = { info, ordinals: [] };
        documents.set(key, doc);
        const keys = documentKeys.get(chunk.documentId);
        if (keys === undefined) documentKeys.set(chunk.documentId, [key]);
        else keys.push(key);
      }
    }
    doc.ordinals.push(ordinal);
  });
  if (bm25.size !== chunks.length || vectors.size !== chunks.length || chunkOrdinals.size !== chunks.length) {
    throw new Error(`segment ${header.segmentId}: chunk store, BM25 and vector index sizes differ`);
  }
  let bm25ToChunk: Int32Array | undefined;
  for (let b = 0; b < bm25.ids.length; b += 1) {
    if (bm25.ids[b] === chunks[b]?.chunkId) continue;
    bm25ToChunk ??= Int32Array.from({ length: bm25.ids.length }, (_, i) => i);
    const ordinal = chunkOrdinals.get(bm25.ids[b] as string);
    if (ordinal === undefined) throw new Error(`segment ${header.segmentId}: BM25 id not in the chunk store`);
    bm25ToChunk[b] = ordinal;
  }
  vectors.ids.forEach((id, label) => {
    if (id !== chunks[label]?.chunkId) throw new Error(`segment ${header.segmentId}: vector labels out of order`);
  });
  const segment: Segment = {
    header: Object.freeze(header),
    chunks,
    bm25,
    vectors,
    chunkOrdinals,
    documents,
    documentKeys,
  };
  return bm25ToChunk === undefined ? segment : { ...segment, bm25ToChunk };
}

/** Builds the segment from de-duplicated entries (sorted by document and ordinal for determinism). */
function buildFromEntries(
  segmentId: string,
  entries: Entry[],
  options: BuildSegmentOptions & { mergedFrom?: string[] },
): Segment {
  entries.sort(
    (a, b) =>
      (a.chunk.documentId < b.chunk.documentId ? -1 : a.chunk.documentId > b.chunk.documentId ? 1 : 0) ||
      a.chunk.ordinal - b.chunk.ordinal ||
      (a.chunk.chunkId < b.chunk.chunkId ? -1 : a.chunk.chunkId > b.chunk.chunkId ? 1 : 0),
  );
  const collections = new Set(entries.map((entry) => entry.info.collection));
  if (collections.size > 1) throw new Error(`segment ${segmentId}: chunks from several collections`);
  const collection = entries[0]?.info.collection ?? options.collection ?? null;
  const dimension = entries[0]?.vector.length ?? options.dimension ?? 0;
  const chunks = entries.map((entry) => storedChunk(entry.chunk, entry.info));
  const ids = chunks.map((chunk) => chunk.chunkId);
  const bm25 = Bm25Index.build(chunks.map((chunk) => ({ id: chunk.chunkId, text: chunk.text })));
  const vectors = VectorIndex.build(
    ids,
    entries.map((entry) => entry.vector),
    { dimension },
  );
  const header: SegmentHeader = {
    formatVersion: SEGMENT_FORMAT_VERSION,
    segmentId,
    collection,
    chunkCount: chunks.length,
    documentCount: new Set(chunks.map((chunk) => chunk.documentId)).size,
    dimension: vectors.dimension,
    createdAt: isoTime(options.createdAt),
    bm25Kind: bm25.kind,
  };
  if (options.sourceBatchId !== undefined) header.sourceBatchId = options.sourceBatchId;
  if (options.mergedFrom !== undefined) header.mergedFrom = options.mergedFrom;
  return assemble(header, chunks, bm25, vectors);
}

/**
 * Builds a segment from one batch of embedded chunks. `docs` (by document id) must describe every chunk's
 * document, with its `revision` when known: a batch holds one revision per document. A chunk id given twice
 * keeps its last occurrence. All chunks must belong to one collection.
 */
export function buildSegment(
  segmentId: string,
  chunks: readonly EmbeddedChunk[],
  docs: ReadonlyMap<string, DocumentInfo>,
  options: BuildSegmentOptions = {},
): Segment {
  const byId = new Map<string, Entry>();
  const infos = new Map<string, DocumentInfo>();
  for (const chunk of chunks) {
    let info = infos.get(chunk.documentId);
    if (info === undefined) {
      const given = docs.get(chunk.documentId);
      if (given === undefined) throw new Error(`buildSegment: no DocumentInfo for document ${chunk.documentId}`);
      info = documentInfo(given);
      infos.set(chunk.documentId, info);
    }
    if (chunk.collection !== info.collection) {
      throw new Error(
        `buildSegment: chunk ${chunk.chunkId} is in collection ${chunk.collection}, its document in ${info.collection}`,
      );
    }
    byId.set(chunk.chunkId, { chunk, info, vector: chunk.vector });
  }
  return buildFromEntries(segmentId, [...byId.values()], options);
}

/**
 * Compaction: one segment with the live chunks of `segments`. Chunks of tombstoned documents are dropped:
 * a tombstone is a `documentKey` (that revision only) or a bare document id (every revision). Among the
 * chunks left, a chunk id present in several segments keeps the version from the newest segment (by
 * `createdAt`, then by position in `segments`), except that a revision search does not show yet (`pending`:
 * its job still running, or failed) never displaces the chunk of one it shows. Each chunk keeps its own
 * revision, with the newest info of that revision (never another revision's). BM25 and faiss are rebuilt
 * from the stored text and vectors.
 */
export function mergeSegments(
  segments: readonly Segment[],
  tombstones: ReadonlySet<string>,
  newId: string,
  { pending, ...options }: Omit<BuildSegmentOptions, "sourceBatchId"> & { pending?: ReadonlySet<string> } = {},
): Segment {
  const ordered = segments
    .map((segment, position) => ({ segment, position }))
    .sort((a, b) => compareAge(a.segment, a.position, b.segment, b.position))
    .map(({ segment }) => segment);
  const dimensions = new Set(ordered.map((s) => s.header.dimension).filter((d) => d > 0));
  if (dimensions.size > 1) throw new Error("mergeSegments: segments have different embedding dimensions");
  const collections = new Set(ordered.map((s) => s.header.collection).filter((c) => c !== null));
  if (collections.size > 1) throw new Error("mergeSegments: segments belong to different collections");
  const byId = new Map<string, Entry & { key: string }>();
  const infos = new Map<string, DocumentInfo>();
  for (const segment of ordered) {
    for (const [key, doc] of segment.documents) {
      if (tombstones.has(key) || tombstones.has(doc.info.documentId)) continue;
      infos.set(key, doc.info);
      for (const ordinal of doc.ordinals) {
        const chunk = segment.chunks[ordinal] as StoredChunk;
        const held = byId.get(chunk.chunkId);
        if (held && pending?.has(key) && !pending.has(held.key)) continue;
        byId.delete(chunk.chunkId);
        byId.set(chunk.chunkId, { chunk, info: doc.info, vector: segment.vectors.vector(ordinal), key });
      }
    }
  }
  // Every document revision's chunks take the newest info for that revision.
  const entries = [...byId.values()].map(({ key, ...entry }) => ({ ...entry, info: infos.get(key) ?? entry.info }));
  const [dimension] = dimensions;
  const [collection] = collections;
  const buildOptions: BuildSegmentOptions & { mergedFrom: string[] } = {
    ...options,
    mergedFrom: [...new Set(ordered.map((s) => s.header.segmentId))],
  };
  if (buildOptions.dimension === undefined && dimension !== undefined) buildOptions.dimension = dimension;
  if (buildOptions.collection === undefined && collection !== undefined && collection !== null) {
    buildOptions.collection = collection;
  }
  return buildFromEntries(newId, entries, buildOptions);
}

/** Orders segments oldest first: by createdAt, then by position. */
export function compareAge(a: Segment, positionA: number, b: Segment, positionB: number): number {
  const ta = a.header.createdAt;
  const tb = b.header.createdAt;
  return ta < tb ? -1 : ta > tb ? 1 : positionA - positionB;
}

/** Serialises a segment into the single-object binary format described above. */
export function encodeSegment(segment: Segment): Uint8Array {
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
  for (const chunk of segment.chunks) {
    const key = documentKey(chunk);
    let d = docIndex.get(key);
    if (d === undefined) {
      d = documents.length;
      docIndex.set(key, d);
      documents.push((segment.documents.get(key) as SegmentDocument).info);
    }
    columns.chunkId.push(chunk.chunkId);
    columns.document.push(d);
    columns.ordinal.push(chunk.ordinal);
    columns.page.push(chunk.page);
    columns.start.push(chunk.start);
    columns.end.push(chunk.end);
    columns.text.push(chunk.text);
  }
  const store: ChunkStoreJson = { documents, chunks: columns };
  const bodies: Array<[SectionEntry["name"], SectionEntry["encoding"], Uint8Array]> = [
    ["faiss", "raw", segment.vectors.toBuffer()],
    ["chunks", "gzip", gzipSync(JSON.stringify(store))],
    ["bm25", "gzip", gzipSync(segment.bm25.toJSON())],
  ];
  const sections: SectionEntry[] = [];
  let offset = 0;
  for (const [name, encoding, body] of bodies) {
    sections.push({ name, offset, length: body.length, crc32: crc32(body), encoding });
    offset += body.length;
  }
  const header: EncodedHeader = { ...segment.header, sections };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const out = Buffer.allocUnsafe(PREAMBLE_BYTES + headerBytes.length + offset);
  out.write(SEGMENT_MAGIC, 0, "latin1");
  out.writeUInt16LE(SEGMENT_FORMAT_VERSION, 4);
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

/** Reads only the header of an encoded segment (cheap: no section is decoded). */
export function readSegmentHeader(bytes: Uint8Array): SegmentHeader & { sections: readonly SectionEntry[] } {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < PREAMBLE_BYTES || buffer.toString("latin1", 0, 4) !== SEGMENT_MAGIC) {
    throw new Error("not a DataDistiller segment (bad magic)");
  }
  const version = buffer.readUInt16LE(4);
  if (version !== SEGMENT_FORMAT_VERSION) throw new Error(`unsupported segment format version ${version}`);
  const headerLength = buffer.readUInt32LE(8);
  if (PREAMBLE_BYTES + headerLength > buffer.length) throw new Error("truncated segment header");
  return JSON.parse(buffer.toString("utf8", PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)) as EncodedHeader;
}

function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

/** Decodes an encoded segment into search-ready form (checks magic, version, sizes and checksums). */
export function decodeSegment(bytes: Uint8Array): Segment {
  const { sections, ...header } = readSegmentHeader(bytes);
  const dataStart = PREAMBLE_BYTES + new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  const section = (name: SectionEntry["name"]): Uint8Array => {
    const entry = sections.find((s) => s.name === name);
    if (entry === undefined) throw new Error(`segment ${header.segmentId}: missing section ${name}`);
    const start = dataStart + entry.offset;
    if (start + entry.length > bytes.length) throw new Error(`segment ${header.segmentId}: truncated section ${name}`);
    const body = bytes.subarray(start, start + entry.length);
    if (crc32(body) !== entry.crc32) throw new Error(`segment ${header.segmentId}: checksum mismatch in ${name}`);
    return entry.encoding === "gzip" ? gunzipSync(body) : body;
  };
  const store = JSON.parse(utf8(section("chunks"))) as ChunkStoreJson;
  const chunks: StoredChunk[] = store.chunks.chunkId.map((chunkId, i) => {
    const info = store.documents[store.chunks.document[i] as number] as DocumentInfo;
    if (info.metadata !== undefined) Object.freeze(info.metadata);
    return storedChunk(
      {
        chunkId,
        documentId: info.documentId,
        ordinal: store.chunks.ordinal[i] as number,
        page: store.chunks.page[i] as number,
        start: store.chunks.start[i] as number,
        end: store.chunks.end[i] as number,
        text: store.chunks.text[i] as string,
      },
      info,
    );
  });
  const bm25 = Bm25Index.fromJSON(utf8(section("bm25")));
  const vectors = VectorIndex.fromBuffer(
    section("faiss"),
    chunks.map((chunk) => chunk.chunkId),
  );
  if (chunks.length !== header.chunkCount) throw new Error(`segment ${header.segmentId}: chunk count mismatch`);
  return assemble({ ...header }, chunks, bm25, vectors);
}
