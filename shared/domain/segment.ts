/**
 * Index segments: immutable units of a collection's index, one S3 object each, laid out so a search
 * container can open one by reading a few byte ranges and answer from typed arrays over those bytes.
 *
 * A segment holds n chunks of one collection in a fixed order (ordinal 0..n−1), sorted by document
 * (document id, then revision, then the chunk's position in its document): every document revision
 * (`documentKey`) is one contiguous range of ordinals. Two revisions of a document can live in one
 * segment; chunk ids are unique within a segment (the newest copy wins when segments merge).
 *
 * File layout (little-endian):
 *
 *   0   "DDSG"   u16 version (2)   u16 flags (0)   u32 H = header length   u32 D = data offset
 *   16  H bytes  UTF-8 JSON header: `SegmentHeader` plus `groups`, a table of
 *                {offset, length, crc32, blocks: {name: {offset, length}}} (group offsets from the file
 *                start, block offsets from the group start, every offset 8-byte aligned)
 *   D   the groups, back to back. Read when the segment opens ("resident", checked against their CRC):
 *         docs      per document: chunk range, id, revision, filename, content type, metadata (strings
 *                   as offsets + UTF-8 blobs, sorted by id and revision; metadata deduplicated JSON)
 *         ids       chunk ids by ordinal, and an FNV-1a hash table over them
 *         terms     BM25 terms in code point order, and where each term's postings start
 *         dense     large segments: the IVF-PQ index (centroids, codebook, inverted lists of codes)
 *         vectors   small segments: the normalised float32 vectors (a flat exact index)
 *       read by byte range when a query needs them ("lazy"):
 *         postings  per term: its documents (u32) then their weights (u32, in millionths: wink's
 *                   consolidated weights exactly, what search adds up) — one range per query term
 *         vectors   large segments: the float32 vectors, for exact re-scoring of the ANN shortlist, in
 *                   the inverted lists' slot order (`vectorOrder: "lists"`): a query's shortlist comes
 *                   from the few lists it probes, so re-scoring reads a few contiguous ranges (one per
 *                   probed list at most) instead of one small ranged GET per candidate
 *         chunks    per chunk 6 × u32: position in its document, page, start, end, text offset, length
 *         texts     the chunk texts (UTF-8), for the results only
 *       read by compaction only: tfs (u16 per posting), lengths (u32 per chunk).
 *
 * Version 1 segments (one JSON + gzip object decoded whole) are still read: they are rebuilt in this
 * format when opened (see segment-v1.ts), and compaction rewrites them.
 */
import { crc32 } from "node:zlib";
import { buildIvfPq, DEFAULT_ANN_MIN_CHUNKS, type IvfPq, ivfPqShape } from "./ann.ts";
import {
  assertLittleEndian,
  type BlockRef,
  buildHashSlots,
  compareCodePoints,
  f32View,
  GroupReader,
  GroupWriter,
  hashLookup,
  StringTable,
  u32View,
  utf8Bytes,
  utf8Text,
} from "./binary.ts";
import {
  type Bm25Params,
  type Bm25Postings,
  buildBm25Postings,
  DEFAULT_BM25_PARAMS,
  mergeBm25Postings,
  type PostingSource,
} from "./bm25.ts";
import type { SegmentRef } from "./manifest.ts";
import { decodeSegmentV1, SEGMENT_V1 } from "./segment-v1.ts";
import { type Chunk, type DocumentInfo, documentKey, type EmbeddedChunk } from "./types.ts";
import { FlatIndex, normalizeInto, type VectorInput } from "./vector-index.ts";
import { isMasked } from "./visibility.ts";

export const SEGMENT_MAGIC = "DDSG";
export const SEGMENT_FORMAT_VERSION = 2;
const PREAMBLE_BYTES = 16;
/** The first read of a segment: the preamble, the header and, for small segments, everything. */
export const SEGMENT_HEAD_BYTES = 64 * 1024;
const CHUNK_RECORD = 6;

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

export type DenseLayout =
  | { kind: "flat" }
  /** `vectorOrder` "lists": the vectors group in slot order; absent (segments written before): ordinal order. */
  | { kind: "ivfpq"; nlist: number; m: number; vectorOrder?: "lists" };

export interface SegmentHeader {
  formatVersion: number;
  segmentId: string;
  /** The collection every chunk belongs to (null only for an empty segment built without one). */
  collection: string | null;
  chunkCount: number;
  documentCount: number;
  /** Embedding dimension (0 for an empty segment). */
  dimension: number;
  /** The embedding model of every vector (registry id); absent in segments written before models were recorded. */
  model?: string;
  /** ISO-8601 time; among segments holding the same chunk id, the newest wins. */
  createdAt: string;
  /** The batch the segment was built from (e.g. topic-partition-offset range), for idempotent writes. */
  sourceBatchId?: string;
  /** Segments a compaction merged into this one. */
  mergedFrom?: string[];
  bm25: { params: Bm25Params; totalLength: number; termCount: number; postingCount: number };
  dense: DenseLayout;
}

type GroupName = "docs" | "ids" | "terms" | "dense" | "vectors" | "postings" | "tfs" | "lengths" | "chunks" | "texts";
const GROUP_ORDER: readonly GroupName[] = [
  "docs",
  "ids",
  "terms",
  "dense",
  "vectors",
  "postings",
  "tfs",
  "lengths",
  "chunks",
  "texts",
];

interface GroupEntry {
  offset: number;
  length: number;
  crc32: number;
  blocks: Record<string, BlockRef>;
}

interface EncodedHeader extends SegmentHeader {
  groups: Partial<Record<GroupName, GroupEntry>>;
}

// ---------------------------------------------------------------------------------------------
// Byte sources

export interface ByteRange {
  offset: number;
  length: number;
}

/** Where a segment's bytes come from: memory, a local file, S3 byte ranges (see the adapters). */
export interface ByteSource {
  readonly size: number;
  /**
   * Whether reads are local (memory, a cached file): then each range is read exactly, since a read costs
   * microseconds; remote reads (S3 GETs) coalesce nearby ranges, trading bytes for round trips.
   */
  readonly local?: boolean;
  /** The bytes of each range, in order. */
  read(ranges: readonly ByteRange[]): Promise<Uint8Array[]>;
}

export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    local: true,
    read: async (ranges) =>
      ranges.map(({ offset, length }) => {
        if (offset < 0 || offset + length > bytes.length) throw new Error("segment: read past the end (truncated?)");
        return bytes.subarray(offset, offset + length);
      }),
  };
}

/**
 * Reads many small ranges from a remote source as fewer, larger ones (ranges closer than `gap` bytes are
 * read together); from a local source, exactly the ranges asked for.
 */
export async function readCoalesced(
  source: ByteSource,
  ranges: readonly ByteRange[],
  gap = 16 * 1024,
): Promise<Uint8Array[]> {
  if (ranges.length <= 1 || source.local === true) return source.read(ranges);
  const order = ranges
    .map((_, i) => i)
    .sort((a, b) => (ranges[a] as ByteRange).offset - (ranges[b] as ByteRange).offset);
  const spans: { offset: number; end: number; members: number[] }[] = [];
  for (const i of order) {
    const { offset, length } = ranges[i] as ByteRange;
    const last = spans.at(-1);
    if (last !== undefined && offset <= last.end + gap) {
      last.end = Math.max(last.end, offset + length);
      last.members.push(i);
    } else spans.push({ offset, end: offset + length, members: [i] });
  }
  const bytes = await source.read(spans.map((span) => ({ offset: span.offset, length: span.end - span.offset })));
  const out = new Array<Uint8Array>(ranges.length);
  spans.forEach((span, s) => {
    for (const i of span.members) {
      const { offset, length } = ranges[i] as ByteRange;
      out[i] = (bytes[s] as Uint8Array).subarray(offset - span.offset, offset - span.offset + length);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resident tables

/** A segment's documents (one per revision), sorted by document id then revision. */
export class DocumentTable {
  private readonly parsedMetadata = new Map<number, Readonly<Record<string, MetadataValue>> | undefined>();

  constructor(
    readonly collection: string | null,
    /** Chunks of document d are ordinals [chunkStart[d], chunkStart[d+1]). */
    readonly chunkStart: Uint32Array,
    readonly ids: StringTable,
    readonly revisions: StringTable,
    readonly filenames: StringTable,
    /** Bit 0: has a filename. */
    readonly flags: Uint8Array,
    readonly contentTypeIndex: Uint32Array,
    readonly contentTypes: readonly string[],
    /** Index into `metadataJson`, or 0xffffffff for none. */
    readonly metadataIndex: Uint32Array,
    readonly metadataJson: StringTable,
  ) {}

  get count(): number {
    return this.chunkStart.length - 1;
  }

  documentId(d: number): string {
    return this.ids.get(d);
  }

  revision(d: number): string | undefined {
    return this.revisions.offsets[d] === this.revisions.offsets[d + 1] ? undefined : this.revisions.get(d);
  }

  key(d: number): string {
    return documentKey({ documentId: this.documentId(d), revision: this.revision(d) });
  }

  /** Every document key, in table order. */
  keys(): string[] {
    return Array.from({ length: this.count }, (_, d) => this.key(d));
  }

  contentType(d: number): string {
    return this.contentTypes[this.contentTypeIndex[d] as number] as string;
  }

  metadata(d: number): Readonly<Record<string, MetadataValue>> | undefined {
    const index = this.metadataIndex[d] as number;
    if (index === 0xffffffff) return undefined;
    if (!this.parsedMetadata.has(index)) {
      this.parsedMetadata.set(index, Object.freeze(JSON.parse(this.metadataJson.get(index))));
    }
    return this.parsedMetadata.get(index);
  }

  info(d: number): DocumentInfo {
    const info: DocumentInfo = {
      documentId: this.documentId(d),
      collection: this.collection ?? "",
      contentType: this.contentType(d),
    };
    if (((this.flags[d] as number) & 1) !== 0) info.filename = this.filenames.get(d);
    const metadata = this.metadata(d);
    if (metadata !== undefined) info.metadata = metadata as Record<string, MetadataValue>;
    const revision = this.revision(d);
    if (revision !== undefined) info.revision = revision;
    return info;
  }

  /** The documents [lo, hi) with this public id (one per revision in this segment). */
  withId(documentId: string): [number, number] {
    const key = utf8Bytes(documentId);
    const lo = this.ids.lowerBound(key);
    let hi = lo;
    while (hi < this.count && this.ids.equals(hi, key)) hi += 1;
    return [lo, hi];
  }

  /** The document holding this revision of the id (revision undefined: the one without a revision), or −1. */
  find(documentId: string, revision?: string): number {
    const [lo, hi] = this.withId(documentId);
    const wanted = revision ?? "";
    for (let d = lo; d < hi; d += 1) if ((this.revision(d) ?? "") === wanted) return d;
    return -1;
  }

  /** The document that holds a chunk ordinal. */
  documentOf(ordinal: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.chunkStart[mid] as number) <= ordinal) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** Chunk ids by ordinal, with a hash lookup. */
export class ChunkIdTable {
  constructor(
    readonly ids: StringTable,
    private readonly slots: Uint32Array,
  ) {}

  id(ordinal: number): string {
    return this.ids.get(ordinal);
  }

  /** The ordinal of a chunk id (UTF-8 bytes or text), or −1. */
  find(id: string | Uint8Array): number {
    return hashLookup(this.ids, this.slots, typeof id === "string" ? utf8Bytes(id) : id);
  }
}

/** BM25 terms in code point order and where each one's postings are. */
export class TermTable {
  constructor(
    readonly terms: StringTable,
    /** Postings of term t are slots [start[t], start[t+1]). */
    readonly start: Uint32Array,
  ) {}

  get count(): number {
    return this.terms.size;
  }

  find(term: string): number {
    const key = utf8Bytes(term);
    const t = this.terms.lowerBound(key);
    return t < this.count && this.terms.equals(t, key) ? t : -1;
  }

  documentFrequency(t: number): number {
    return (this.start[t + 1] as number) - (this.start[t] as number);
  }
}

/** One query term's postings in a segment: document ordinals and wink's weights (in millionths). */
export interface StoredPostings {
  docs: Uint32Array;
  weights: Uint32Array;
}

// ---------------------------------------------------------------------------------------------
// The segment

export interface OpenOptions {
  /** Resident groups to load (default: all). A search coordinator only needs "terms". */
  groups?: readonly ("docs" | "ids" | "terms" | "dense")[];
}

/**
 * An opened segment: its header and resident tables in memory, everything else read from its source by
 * byte range when asked for.
 */
export class Segment {
  private constructor(
    readonly header: SegmentHeader,
    private readonly groups: Partial<Record<GroupName, GroupEntry>>,
    private readonly source: ByteSource,
    private readonly documentTable: DocumentTable | undefined,
    private readonly idTable: ChunkIdTable | undefined,
    private readonly termTable: TermTable | undefined,
    private readonly flat: FlatIndex | undefined,
    private readonly ann: IvfPq | undefined,
    /** The whole encoded segment, when it lives in memory. */
    readonly bytes: Uint8Array | undefined,
  ) {}

  get id(): string {
    return this.header.segmentId;
  }

  get size(): number {
    return this.header.chunkCount;
  }

  get documents(): DocumentTable {
    return required(this.documentTable, this.id, "docs");
  }

  get chunkIds(): ChunkIdTable {
    return required(this.idTable, this.id, "ids");
  }

  get terms(): TermTable {
    return required(this.termTable, this.id, "terms");
  }

  /** The exact index of a small segment (undefined for an ANN segment). */
  get flatIndex(): FlatIndex | undefined {
    return this.flat;
  }

  /** The IVF-PQ index of a large segment (undefined for a flat one). */
  get annIndex(): IvfPq | undefined {
    return this.ann;
  }

  /** Opens a segment from its source: one read for the head, one batch of reads for the resident groups. */
  static async open(source: ByteSource, options: OpenOptions = {}): Promise<Segment> {
    assertLittleEndian();
    const headLength = Math.min(source.size, SEGMENT_HEAD_BYTES);
    if (headLength < PREAMBLE_BYTES) throw new Error("not a DataDistiller segment (too short: truncated?)");
    let [head] = (await source.read([{ offset: 0, length: headLength }])) as [Uint8Array];
    const version = preambleVersion(head);
    if (version === SEGMENT_V1) {
      const [whole] = (await source.read([{ offset: 0, length: source.size }])) as [Uint8Array];
      return rebuildV1(whole);
    }
    const { headerLength, dataOffset } = preamble(head);
    if (PREAMBLE_BYTES + headerLength > head.length) {
      [head] = (await source.read([{ offset: 0, length: PREAMBLE_BYTES + headerLength }])) as [Uint8Array];
    }
    const header = parseHeader(head, headerLength, dataOffset, source.size);
    const wanted = residentGroups(header, options.groups);
    const inHead = (entry: GroupEntry) => entry.offset + entry.length <= head.length;
    const missing = wanted.filter((name) => !inHead(header.groups[name] as GroupEntry));
    const fetched = await source.read(
      missing.map((name) => {
        const entry = header.groups[name] as GroupEntry;
        return { offset: entry.offset, length: entry.length };
      }),
    );
    const bytes = new Map<GroupName, Uint8Array>();
    for (const name of wanted) {
      const entry = header.groups[name] as GroupEntry;
      bytes.set(
        name,
        inHead(entry)
          ? head.subarray(entry.offset, entry.offset + entry.length)
          : (fetched[missing.indexOf(name)] as Uint8Array),
      );
    }
    // A small segment came whole with the first read: its lazy groups are read from memory too.
    const whole = head.length === source.size ? head : undefined;
    return Segment.assemble(header, whole === undefined ? source : memorySource(whole), bytes, whole);
  }

  /** Opens an encoded segment held in memory (synchronously). */
  static fromBytes(bytes: Uint8Array): Segment {
    assertLittleEndian();
    if (bytes.length < PREAMBLE_BYTES) throw new Error("not a DataDistiller segment (too short: truncated?)");
    if (preambleVersion(bytes) === SEGMENT_V1) return rebuildV1(bytes);
    const { headerLength, dataOffset } = preamble(bytes);
    const header = parseHeader(bytes, headerLength, dataOffset, bytes.length);
    const groups = new Map<GroupName, Uint8Array>();
    for (const name of residentGroups(header, undefined)) {
      const entry = header.groups[name] as GroupEntry;
      groups.set(name, bytes.subarray(entry.offset, entry.offset + entry.length));
    }
    return Segment.assemble(header, memorySource(bytes), groups, bytes);
  }

  private static assemble(
    encoded: EncodedHeader,
    source: ByteSource,
    groups: ReadonlyMap<GroupName, Uint8Array>,
    whole: Uint8Array | undefined,
  ): Segment {
    const { groups: entries, ...header } = encoded;
    const reader = (name: GroupName): GroupReader | undefined => {
      const bytes = groups.get(name);
      if (bytes === undefined) return undefined;
      const entry = entries[name] as GroupEntry;
      if (crc32(bytes) !== entry.crc32) throw new Error(`segment ${header.segmentId}: checksum mismatch in ${name}`);
      return new GroupReader(bytes, entry.blocks, `segment ${header.segmentId} ${name}`);
    };
    const docs = reader("docs");
    const ids = reader("ids");
    const terms = reader("terms");
    const dense = reader("dense");
    const vectors = header.dense.kind === "flat" ? reader("vectors") : undefined;
    const documentTable =
      docs &&
      new DocumentTable(
        header.collection,
        docs.u32("chunkStart"),
        docs.strings("idOffsets", "ids"),
        docs.strings("revisionOffsets", "revisions"),
        docs.strings("filenameOffsets", "filenames"),
        docs.raw("flags"),
        docs.u32("contentTypeIndex"),
        docs.json<string[]>("contentTypes"),
        docs.u32("metadataIndex"),
        docs.strings("metadataOffsets", "metadata"),
      );
    const idTable = ids && new ChunkIdTable(ids.strings("offsets", "ids"), ids.u32("hash"));
    const termTable = terms && new TermTable(terms.strings("offsets", "terms"), terms.u32("start"));
    const flat = vectors && FlatIndex.fromVectors(vectors.f32("vectors"), header.dimension);
    let ann: IvfPq | undefined;
    if (dense !== undefined && header.dense.kind === "ivfpq") {
      ann = {
        dimension: header.dimension,
        nlist: header.dense.nlist,
        m: header.dense.m,
        centroids: dense.f32("centroids"),
        codebook: dense.f32("codebook"),
        listOffsets: dense.u32("listOffsets"),
        listIds: dense.u32("listIds"),
        codes: dense.raw("codes"),
      };
    }
    if (documentTable && documentTable.chunkStart[documentTable.count] !== header.chunkCount) {
      throw new Error(`segment ${header.segmentId}: chunk count mismatch`);
    }
    return new Segment(header, entries, source, documentTable, idTable, termTable, flat, ann, whole);
  }

  private entry(name: GroupName): GroupEntry {
    const entry = this.groups[name];
    if (entry === undefined) throw new Error(`segment ${this.id}: no ${name} group`);
    return entry;
  }

  /** A whole group, checked against its checksum (compaction reads groups whole). */
  async readGroup(name: GroupName): Promise<GroupReader> {
    const entry = this.entry(name);
    const [bytes] = (await this.source.read([{ offset: entry.offset, length: entry.length }])) as [Uint8Array];
    if (crc32(bytes) !== entry.crc32) throw new Error(`segment ${this.id}: checksum mismatch in ${name}`);
    return new GroupReader(bytes, entry.blocks, `segment ${this.id} ${name}`);
  }

  private blockRange(group: GroupName, block: string, offset: number, length: number): ByteRange {
    const entry = this.entry(group);
    const ref = entry.blocks[block];
    if (ref === undefined) throw new Error(`segment ${this.id}: no ${group}.${block}`);
    return { offset: entry.offset + ref.offset + offset, length };
  }

  /** The postings of the given terms (indexes into `terms`), read in one batch of ranges. */
  async postings(termIndexes: readonly number[]): Promise<StoredPostings[]> {
    const { start } = this.terms;
    const ranges = termIndexes.map((t) => {
      const first = start[t] as number;
      const df = (start[t + 1] as number) - first;
      return this.blockRange("postings", "data", first * 8, df * 8);
    });
    const blocks = await readCoalesced(this.source, ranges);
    return blocks.map((bytes, i) => {
      const df = (ranges[i] as ByteRange).length / 8;
      const block = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
      return {
        docs: new Uint32Array(block.buffer, block.byteOffset, df),
        weights: new Uint32Array(block.buffer, block.byteOffset + df * 4, df),
      };
    });
  }

  /** The stored (normalised) vectors of the given ordinals. */
  async vectors(ordinals: readonly number[]): Promise<Float32Array[]> {
    const d = this.header.dimension;
    if (this.flat !== undefined) return ordinals.map((o) => this.flat?.vector(o) as Float32Array);
    const dense = this.header.dense;
    if (dense.kind === "ivfpq" && dense.vectorOrder === "lists") {
      const slots = this.slotsByOrdinal();
      // Candidates of one probed list lie within its slots: read each list's span as one range.
      const listBytes = Math.ceil(this.size / dense.nlist) * d * 4;
      const blocks = await readCoalesced(
        this.source,
        ordinals.map((o) => this.blockRange("vectors", "vectors", (slots[o] as number) * d * 4, d * 4)),
        listBytes,
      );
      return blocks.map(f32View);
    }
    const blocks = await readCoalesced(
      this.source,
      ordinals.map((o) => this.blockRange("vectors", "vectors", o * d * 4, d * 4)),
    );
    return blocks.map(f32View);
  }

  private slotByOrdinal: Uint32Array | undefined;

  /** The inverted-list slot of each ordinal (the inverse of the IVF-PQ index's `listIds`). */
  private slotsByOrdinal(): Uint32Array {
    if (this.slotByOrdinal === undefined) {
      const { listIds } = required(this.ann, this.id, "dense");
      const slots = new Uint32Array(listIds.length);
      listIds.forEach((ordinal, slot) => {
        slots[ordinal] = slot;
      });
      this.slotByOrdinal = slots;
    }
    return this.slotByOrdinal;
  }

  /**
   * Every stored vector, read whole (compaction, exact-search baselines): `rows` in storage order and,
   * when that is not ordinal order, the ordinal of each row.
   */
  async storedVectors(): Promise<{ rows: Float32Array; ordinals?: Uint32Array }> {
    if (this.flat !== undefined) return { rows: this.flat.vectors };
    const rows = (await this.readGroup("vectors")).f32("vectors");
    const dense = this.header.dense;
    if (dense.kind !== "ivfpq" || dense.vectorOrder !== "lists") return { rows };
    if (this.ann !== undefined) return { rows, ordinals: this.ann.listIds };
    const [listIds] = (await this.source.read([this.blockRange("dense", "listIds", 0, this.size * 4)])) as [Uint8Array];
    return { rows, ordinals: u32View(listIds) };
  }

  /** The chunks with these ordinals, with their documents' attributes (two batches of range reads). */
  async chunks(ordinals: readonly number[]): Promise<StoredChunk[]> {
    if (ordinals.length === 0) return [];
    const records = (
      await readCoalesced(
        this.source,
        ordinals.map((o) => this.blockRange("chunks", "records", o * CHUNK_RECORD * 4, CHUNK_RECORD * 4)),
      )
    ).map(u32View);
    const texts = await readCoalesced(
      this.source,
      records.map((record) => this.blockRange("texts", "texts", record[4] as number, record[5] as number)),
    );
    const docs = this.documents;
    const ids = this.chunkIds;
    return ordinals.map((ordinal, i) => {
      const record = records[i] as Uint32Array;
      const info = docs.info(docs.documentOf(ordinal));
      const chunk: StoredChunk = {
        chunkId: ids.id(ordinal),
        documentId: info.documentId,
        ordinal: record[0] as number,
        page: record[1] as number,
        start: record[2] as number,
        end: record[3] as number,
        text: utf8Text(texts[i] as Uint8Array),
        collection: info.collection,
        contentType: info.contentType,
      };
      if (info.filename !== undefined) chunk.filename = info.filename;
      if (info.metadata !== undefined) chunk.metadata = info.metadata;
      if (info.revision !== undefined) chunk.revision = info.revision;
      return chunk;
    });
  }

  /** Every chunk, in ordinal order. */
  allChunks(): Promise<StoredChunk[]> {
    return this.chunks(Array.from({ length: this.size }, (_, i) => i));
  }
}

function required<T>(value: T | undefined, id: string, group: string): T {
  if (value === undefined) throw new Error(`segment ${id}: the ${group} group was not loaded`);
  return value;
}

function preambleVersion(bytes: Uint8Array): number {
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== SEGMENT_MAGIC) {
    throw new Error("not a DataDistiller segment (bad magic)");
  }
  const version = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(4, true);
  if (version !== SEGMENT_FORMAT_VERSION && version !== SEGMENT_V1) {
    throw new Error(`unsupported segment format version ${version}`);
  }
  return version;
}

function preamble(bytes: Uint8Array): { headerLength: number; dataOffset: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { headerLength: view.getUint32(8, true), dataOffset: view.getUint32(12, true) };
}

function parseHeader(head: Uint8Array, headerLength: number, dataOffset: number, size: number): EncodedHeader {
  if (PREAMBLE_BYTES + headerLength > head.length) throw new Error("truncated segment header");
  const header = JSON.parse(utf8Text(head.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength))) as EncodedHeader;
  let end = dataOffset;
  for (const entry of Object.values(header.groups)) end = Math.max(end, entry.offset + entry.length);
  if (end > size) throw new Error(`segment ${header.segmentId}: truncated (${size} of ${end} bytes)`);
  return header;
}

function residentGroups(header: EncodedHeader, only: OpenOptions["groups"]): GroupName[] {
  const resident: GroupName[] = ["docs", "ids", "terms", header.dense.kind === "flat" ? "vectors" : "dense"];
  const wanted =
    only === undefined
      ? resident
      : resident.filter((name) => only.includes(name as never) || (name === "vectors" && only.includes("dense")));
  return wanted.filter((name) => header.groups[name] !== undefined);
}

// ---------------------------------------------------------------------------------------------
// Writing

/** An encoded segment as the parts of one object (large groups are not copied into one buffer). */
export interface EncodedSegment {
  header: SegmentHeader;
  parts: Uint8Array[];
  byteLength: number;
}

/** The manifest's entry for an encoded segment written to the object `key`. */
export function segmentRef(encoded: EncodedSegment, key: string): SegmentRef {
  return {
    id: encoded.header.segmentId,
    key,
    chunks: encoded.header.chunkCount,
    bytes: encoded.byteLength,
    createdAt: encoded.header.createdAt,
    format: SEGMENT_FORMAT_VERSION,
  };
}

/** One buffer with the whole segment. */
export function concatParts(encoded: EncodedSegment): Uint8Array {
  const out = new Uint8Array(encoded.byteLength);
  let at = 0;
  for (const part of encoded.parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Opens an encoded segment in memory. */
export function openEncoded(encoded: EncodedSegment): Segment {
  return Segment.fromBytes(concatParts(encoded));
}

interface DocumentRow {
  info: DocumentInfo;
  start: number;
  end: number;
}

/** Everything a segment holds, in ordinal order, ready to encode (encoding takes over `vectors`). */
interface SegmentContent {
  header: Omit<SegmentHeader, "formatVersion" | "bm25" | "dense">;
  documents: DocumentRow[];
  chunkIds: string[];
  /** n × 6: position in document, page, start, end, text offset, text length. */
  records: Uint32Array;
  texts: Uint8Array;
  bm25: Omit<Bm25Postings, "terms"> & { termBytes: Uint8Array[] };
  vectors: Float32Array;
  ann: IvfPq | undefined;
}

function documentsGroup(documents: readonly DocumentRow[]): GroupWriter {
  const chunkStart = new Uint32Array(documents.length + 1);
  documents.forEach((doc, d) => {
    chunkStart[d] = doc.start;
    chunkStart[d + 1] = doc.end;
  });
  const ids = StringTable.encode(documents.map((doc) => doc.info.documentId));
  const revisions = StringTable.encode(documents.map((doc) => doc.info.revision ?? ""));
  const filenames = StringTable.encode(documents.map((doc) => doc.info.filename ?? ""));
  const flags = Uint8Array.from(documents, (doc) => (doc.info.filename !== undefined ? 1 : 0));
  const contentTypes: string[] = [];
  const contentTypeIds = new Map<string, number>();
  const metadata: string[] = [];
  const metadataIds = new Map<string, number>();
  const contentTypeIndex = new Uint32Array(documents.length);
  const metadataIndex = new Uint32Array(documents.length);
  documents.forEach((doc, d) => {
    let c = contentTypeIds.get(doc.info.contentType);
    if (c === undefined) {
      c = contentTypes.length;
      contentTypes.push(doc.info.contentType);
      contentTypeIds.set(doc.info.contentType, c);
    }
    contentTypeIndex[d] = c;
    if (doc.info.metadata === undefined) metadataIndex[d] = 0xffffffff;
    else {
      const json = JSON.stringify(doc.info.metadata);
      let m = metadataIds.get(json);
      if (m === undefined) {
        m = metadata.length;
        metadata.push(json);
        metadataIds.set(json, m);
      }
      metadataIndex[d] = m;
    }
  });
  const meta = StringTable.encode(metadata);
  return new GroupWriter()
    .add("chunkStart", chunkStart)
    .add("idOffsets", ids.offsets)
    .add("ids", ids.blob)
    .add("revisionOffsets", revisions.offsets)
    .add("revisions", revisions.blob)
    .add("filenameOffsets", filenames.offsets)
    .add("filenames", filenames.blob)
    .add("flags", flags)
    .add("contentTypeIndex", contentTypeIndex)
    .addJson("contentTypes", contentTypes)
    .add("metadataIndex", metadataIndex)
    .add("metadataOffsets", meta.offsets)
    .add("metadata", meta.blob);
}

/**
 * Rearranges the n × d ordinal-order `vectors` into the IVF-PQ index's slot order, in place (a copy would
 * add a whole segment's vectors to compaction's peak memory): each cycle of the permutation is followed
 * with one spare row.
 */
function toListOrder(vectors: Float32Array, ann: IvfPq, d: number): Float32Array {
  const { listIds } = ann;
  const done = new Uint8Array(listIds.length);
  const spare = new Float32Array(d);
  for (let start = 0; start < listIds.length; start += 1) {
    if (done[start] !== 0) continue;
    // Slot s takes the row of ordinal listIds[s]: walk s → listIds[s] → … back to start.
    spare.set(vectors.subarray(start * d, (start + 1) * d));
    let slot = start;
    for (;;) {
      if (done[slot] !== 0) throw new Error("IVF-PQ list ids are not a permutation of the segment's ordinals");
      done[slot] = 1;
      const from = listIds[slot] as number;
      if (from === start) {
        vectors.set(spare, slot * d);
        break;
      }
      vectors.copyWithin(slot * d, from * d, (from + 1) * d);
      slot = from;
    }
  }
  return vectors;
}

function encodeContent(content: SegmentContent): EncodedSegment {
  const n = content.chunkIds.length;
  const d = content.header.dimension;
  const { bm25, ann } = content;
  const ids = StringTable.encode(content.chunkIds);
  const termOffsets = new Uint32Array(bm25.termBytes.length + 1);
  bm25.termBytes.forEach((term, t) => {
    termOffsets[t + 1] = (termOffsets[t] as number) + term.length;
  });
  const termBlob = new Uint8Array(termOffsets[bm25.termBytes.length] as number);
  bm25.termBytes.forEach((term, t) => {
    termBlob.set(term, termOffsets[t] as number);
  });
  // Postings: per term its documents then its weights (one range per query term).
  const postingData = new Uint8Array(bm25.docs.length * 8);
  for (let t = 0; t < bm25.termBytes.length; t += 1) {
    const first = bm25.start[t] as number;
    const end = bm25.start[t + 1] as number;
    new Uint32Array(postingData.buffer, first * 8, end - first).set(bm25.docs.subarray(first, end));
    new Uint32Array(postingData.buffer, first * 8 + (end - first) * 4, end - first).set(
      bm25.weights.subarray(first, end),
    );
  }
  const groups: Partial<Record<GroupName, GroupWriter>> = {
    docs: documentsGroup(content.documents),
    ids: new GroupWriter()
      .add("offsets", ids.offsets)
      .add("ids", ids.blob)
      .add("hash", buildHashSlots(new StringTable(ids.offsets, ids.blob))),
    terms: new GroupWriter().add("offsets", termOffsets).add("terms", termBlob).add("start", bm25.start),
    vectors: new GroupWriter().add(
      "vectors",
      ann === undefined ? content.vectors : toListOrder(content.vectors, ann, d),
    ),
    postings: new GroupWriter().add("data", postingData),
    tfs: new GroupWriter().add("tfs", bm25.tfs),
    lengths: new GroupWriter().add("lengths", bm25.lengths),
    chunks: new GroupWriter().add("records", content.records),
    texts: new GroupWriter().add("texts", content.texts),
  };
  if (ann !== undefined) {
    groups.dense = new GroupWriter()
      .add("centroids", ann.centroids)
      .add("codebook", ann.codebook)
      .add("listOffsets", ann.listOffsets)
      .add("listIds", ann.listIds)
      .add("codes", ann.codes);
  }
  const header: SegmentHeader = {
    formatVersion: SEGMENT_FORMAT_VERSION,
    ...content.header,
    chunkCount: n,
    bm25: {
      params: bm25.params,
      totalLength: bm25.totalLength,
      termCount: bm25.termBytes.length,
      postingCount: bm25.docs.length,
    },
    dense: ann === undefined ? { kind: "flat" } : { kind: "ivfpq", nlist: ann.nlist, m: ann.m, vectorOrder: "lists" },
  };
  if (content.vectors.length !== n * d) throw new Error(`segment ${header.segmentId}: vector matrix size mismatch`);
  // Group offsets depend on the header's length, which depends on the offsets: lay the groups out from
  // a data offset that leaves room for the header, growing it until it fits.
  const names = GROUP_ORDER.filter((name) => groups[name] !== undefined) as GroupName[];
  let dataOffset = 4096;
  for (;;) {
    const table: Partial<Record<GroupName, GroupEntry>> = {};
    let offset = dataOffset;
    for (const name of names) {
      const group = groups[name] as GroupWriter;
      let crc = 0;
      // (Node 20's crc32 returns 0 for some empty views instead of the running value: skip empty parts.)
      for (const part of group.chunks()) if (part.byteLength > 0) crc = crc32(part, crc);
      table[name] = { offset, length: group.byteLength, crc32: crc, blocks: group.blocks };
      offset += group.byteLength;
    }
    const headerBytes = utf8Bytes(JSON.stringify({ ...header, groups: table } satisfies EncodedHeader));
    if (PREAMBLE_BYTES + headerBytes.length > dataOffset) {
      dataOffset = Math.ceil((PREAMBLE_BYTES + headerBytes.length) / 4096) * 4096;
      continue;
    }
    const head = new Uint8Array(dataOffset);
    head.set(utf8Bytes(SEGMENT_MAGIC), 0);
    const view = new DataView(head.buffer);
    view.setUint16(4, SEGMENT_FORMAT_VERSION, true);
    view.setUint16(6, 0, true);
    view.setUint32(8, headerBytes.length, true);
    view.setUint32(12, dataOffset, true);
    head.set(headerBytes, PREAMBLE_BYTES);
    const parts = [head, ...names.flatMap((name) => (groups[name] as GroupWriter).chunks())];
    return { header, parts, byteLength: offset };
  }
}

export interface BuildSegmentOptions {
  /** Defaults to now. */
  createdAt?: Date | string;
  sourceBatchId?: string;
  /** For an empty segment: the collection and embedding dimension to record. */
  collection?: string;
  dimension?: number;
  /** The embedding model of the vectors, recorded in the header. */
  model?: string;
  /** Segments with at least this many chunks get an IVF-PQ index (default DEFAULT_ANN_MIN_CHUNKS). */
  annMinChunks?: number;
}

function isoTime(value: Date | string | undefined): string {
  if (value === undefined) return new Date().toISOString();
  const date = typeof value === "string" ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new Error(`invalid createdAt ${String(value)}`);
  return date.toISOString();
}

function documentInfo(info: DocumentInfo): DocumentInfo {
  const copy: DocumentInfo = {
    documentId: info.documentId,
    collection: info.collection,
    contentType: info.contentType,
  };
  if (info.filename !== undefined) copy.filename = info.filename;
  if (info.metadata !== undefined) copy.metadata = Object.freeze({ ...info.metadata });
  if (info.revision) copy.revision = info.revision;
  return copy;
}

/** Segment order: by document id, revision, position in the document, chunk id (code point order). */
function compareEntries(
  a: { documentId: string; revision?: string; ordinal: number; chunkId: string },
  b: { documentId: string; revision?: string; ordinal: number; chunkId: string },
): number {
  return (
    compareCodePoints(a.documentId, b.documentId) ||
    compareCodePoints(a.revision ?? "", b.revision ?? "") ||
    a.ordinal - b.ordinal ||
    compareCodePoints(a.chunkId, b.chunkId)
  );
}

function denseIndex(vectors: Float32Array, n: number, d: number, annMinChunks: number): IvfPq | undefined {
  if (n < annMinChunks || d === 0) return undefined;
  const shape = ivfPqShape(n, d);
  return shape === undefined ? undefined : buildIvfPq(vectors, d, shape);
}

interface Entry {
  chunk: Chunk;
  info: DocumentInfo;
  vector: VectorInput;
}

/** Builds a segment from de-duplicated entries: BM25 by wink, the dense index by faiss. */
function buildFromEntries(
  segmentId: string,
  entries: Entry[],
  options: BuildSegmentOptions & { mergedFrom?: string[] },
): EncodedSegment {
  entries.sort((a, b) =>
    compareEntries({ ...a.chunk, revision: a.info.revision }, { ...b.chunk, revision: b.info.revision }),
  );
  const collections = new Set(entries.map((entry) => entry.info.collection));
  if (collections.size > 1) throw new Error(`segment ${segmentId}: chunks from several collections`);
  const n = entries.length;
  const collection = entries[0]?.info.collection ?? options.collection ?? null;
  const d = entries[0]?.vector.length ?? options.dimension ?? 0;
  const vectors = new Float32Array(n * d);
  entries.forEach((entry, i) => {
    if (entry.vector.length !== d) {
      throw new Error(
        `segment ${segmentId}: vector of ${entry.chunk.chunkId} has dimension ${entry.vector.length}, expected ${d}`,
      );
    }
    normalizeInto(entry.vector, vectors, i * d);
  });
  const documents: DocumentRow[] = [];
  entries.forEach((entry, i) => {
    const last = documents.at(-1);
    if (last !== undefined && documentKey(last.info) === documentKey(entry.info)) last.end = i + 1;
    else documents.push({ info: entry.info, start: i, end: i + 1 });
  });
  const textParts = entries.map((entry) => utf8Bytes(entry.chunk.text));
  const records = new Uint32Array(n * CHUNK_RECORD);
  let textLength = 0;
  entries.forEach(({ chunk }, i) => {
    records.set(
      [chunk.ordinal, chunk.page, chunk.start, chunk.end, textLength, (textParts[i] as Uint8Array).length],
      i * CHUNK_RECORD,
    );
    textLength += (textParts[i] as Uint8Array).length;
  });
  const texts = new Uint8Array(textLength);
  textParts.forEach((part, i) => {
    texts.set(part, records[i * CHUNK_RECORD + 4] as number);
  });
  const postings = buildBm25Postings(entries.map((entry) => entry.chunk.text));
  const header: SegmentContent["header"] = {
    segmentId,
    collection,
    chunkCount: n,
    documentCount: new Set(entries.map((entry) => entry.chunk.documentId)).size,
    dimension: d,
    createdAt: isoTime(options.createdAt),
  };
  if (options.sourceBatchId !== undefined) header.sourceBatchId = options.sourceBatchId;
  if (options.model !== undefined) header.model = options.model;
  if (options.mergedFrom !== undefined) header.mergedFrom = options.mergedFrom;
  return encodeContent({
    header,
    documents,
    chunkIds: entries.map((entry) => entry.chunk.chunkId),
    records,
    texts,
    bm25: { ...postings, termBytes: postings.terms.map(utf8Bytes) },
    vectors,
    ann: denseIndex(vectors, n, d, options.annMinChunks ?? DEFAULT_ANN_MIN_CHUNKS),
  });
}

/** The entries of a batch: the last occurrence of a chunk id wins; every chunk's document must be described. */
function batchEntries(chunks: readonly EmbeddedChunk[], docs: ReadonlyMap<string, DocumentInfo>): Entry[] {
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
    byId.delete(chunk.chunkId);
    byId.set(chunk.chunkId, { chunk, info, vector: chunk.vector });
  }
  return [...byId.values()];
}

/**
 * Encodes a segment from one batch of embedded chunks. `docs` (by document id) must describe every chunk's
 * document, with its `revision` when known: a batch holds one revision per document. A chunk id given twice
 * keeps its last occurrence. All chunks must belong to one collection.
 */
export function encodeBatchSegment(
  segmentId: string,
  chunks: readonly EmbeddedChunk[],
  docs: ReadonlyMap<string, DocumentInfo>,
  options: BuildSegmentOptions = {},
): EncodedSegment {
  return buildFromEntries(segmentId, batchEntries(chunks, docs), options);
}

/** `encodeBatchSegment`, opened in memory. */
export function buildSegment(
  segmentId: string,
  chunks: readonly EmbeddedChunk[],
  docs: ReadonlyMap<string, DocumentInfo>,
  options: BuildSegmentOptions = {},
): Segment {
  return openEncoded(encodeBatchSegment(segmentId, chunks, docs, options));
}

/** The encoded bytes of an in-memory segment. */
export function encodeSegment(segment: Segment): Uint8Array {
  if (segment.bytes === undefined) throw new Error(`segment ${segment.id} is not held in memory`);
  return segment.bytes;
}

/** Opens encoded bytes in memory (either format version). */
export function decodeSegment(bytes: Uint8Array): Segment {
  return Segment.fromBytes(bytes);
}

/** Reads only the header of an encoded segment (needs the first bytes only). */
export function readSegmentHeader(bytes: Uint8Array): SegmentHeader {
  const version = preambleVersion(bytes);
  if (version === SEGMENT_V1) return rebuildV1(bytes).header;
  const { headerLength, dataOffset } = preamble(bytes);
  const { groups: _groups, ...header } = parseHeader(bytes, headerLength, dataOffset, Number.POSITIVE_INFINITY);
  return header;
}

/** A v1 segment rebuilt in the current format (same id, creation time and chunks). */
function rebuildV1(bytes: Uint8Array): Segment {
  const { header, entries } = decodeSegmentV1(bytes);
  const options: BuildSegmentOptions & { mergedFrom?: string[] } = {
    createdAt: header.createdAt,
    dimension: header.dimension,
  };
  if (header.collection !== null) options.collection = header.collection;
  if (header.sourceBatchId !== undefined) options.sourceBatchId = header.sourceBatchId;
  if (header.mergedFrom !== undefined) options.mergedFrom = header.mergedFrom;
  if (header.model !== undefined) options.model = header.model;
  return openEncoded(
    buildFromEntries(
      header.segmentId,
      entries.map((entry) => ({ ...entry, info: documentInfo(entry.info) })),
      options,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Merging

/** Orders segments oldest first: by createdAt, then by position. */
export function compareAge(a: Segment, positionA: number, b: Segment, positionB: number): number {
  const ta = a.header.createdAt;
  const tb = b.header.createdAt;
  return ta < tb ? -1 : ta > tb ? 1 : positionA - positionB;
}

interface Survivor {
  source: number;
  ordinal: number;
  key: string;
  documentId: string;
  revision: string | undefined;
  position: number;
  chunkId: string;
}

export type MergeOptions = Omit<BuildSegmentOptions, "sourceBatchId" | "createdAt"> & {
  /** Revisions (`documentKey`s) whose job has not completed: kept, but never in place of a shown one. */
  pending?: ReadonlySet<string>;
};

/**
 * Compaction: one segment with the live chunks of `segments`. Chunks of masked documents are dropped (see
 * visibility.ts). Among the chunks left, a chunk id present in several segments keeps the version from the
 * newest segment (by `createdAt`, then by position in `segments`), except that a revision search does not
 * show yet (`pending`: its job still running, or failed) never displaces the chunk of one it shows. Each chunk keeps its own revision, with
 * the newest info of that revision. Nothing is analysed or embedded again: texts and vectors are copied,
 * BM25 postings merged with their weights recomputed for the merged segment, and the dense index built
 * again by faiss. The merged segment is as new as its newest source.
 *
 * Memory: the merged segment's vectors, texts and postings, plus one source's vectors at a time.
 */
export async function mergeSegmentParts(
  segments: readonly Segment[],
  masked: ReadonlySet<string>,
  newId: string,
  { pending, ...options }: MergeOptions = {},
): Promise<EncodedSegment> {
  const ordered = segments
    .map((segment, position) => ({ segment, position }))
    .sort((a, b) => compareAge(a.segment, a.position, b.segment, b.position))
    .map(({ segment }) => segment);
  const dimensions = new Set(ordered.map((s) => s.header.dimension).filter((dim) => dim > 0));
  if (dimensions.size > 1) throw new Error("mergeSegments: segments have different embedding dimensions");
  const collections = new Set(ordered.map((s) => s.header.collection).filter((c) => c !== null));
  if (collections.size > 1) throw new Error("mergeSegments: segments belong to different collections");
  // Vectors of two models are never merged (a segment without a model predates them: its index's model).
  const models = new Set(ordered.map((s) => s.header.model).filter((m) => m !== undefined));
  if (options.model !== undefined) models.add(options.model);
  if (models.size > 1) throw new Error("mergeSegments: segments hold vectors of different embedding models");
  const model = [...models][0];
  const d = [...dimensions][0] ?? options.dimension ?? 0;
  const collection = ([...collections][0] as string | undefined) ?? options.collection ?? null;
  const params = ordered[0]?.header.bm25.params ?? { ...DEFAULT_BM25_PARAMS };

  // Which copy of each chunk survives, and the newest info of each document revision.
  const records = await Promise.all(ordered.map(async (segment) => (await segment.readGroup("chunks")).u32("records")));
  const byId = new Map<string, Survivor>();
  const infos = new Map<string, DocumentInfo>();
  const pendingHas = (key: string) => pending !== undefined && pending.size > 0 && pending.has(key);
  ordered.forEach((segment, s) => {
    const docs = segment.documents;
    for (let doc = 0; doc < docs.count; doc += 1) {
      const documentId = docs.documentId(doc);
      const revision = docs.revision(doc);
      if (isMasked(masked, documentId, revision)) continue;
      const key = documentKey({ documentId, revision });
      infos.set(key, docs.info(doc));
      for (let ordinal = docs.chunkStart[doc] as number; ordinal < (docs.chunkStart[doc + 1] as number); ordinal += 1) {
        const chunkId = segment.chunkIds.id(ordinal);
        // A revision search does not show yet never displaces the chunk of one it shows.
        const held = byId.get(chunkId);
        if (held !== undefined && pendingHas(key) && !pendingHas(held.key)) continue;
        byId.delete(chunkId);
        const position = (records[s] as Uint32Array)[ordinal * CHUNK_RECORD] as number;
        byId.set(chunkId, { source: s, ordinal, key, documentId, revision, position, chunkId });
      }
    }
  });
  const survivors = [...byId.values()];
  byId.clear();
  survivors.sort((a, b) => compareEntries({ ...a, ordinal: a.position }, { ...b, ordinal: b.position }));
  const n = survivors.length;
  const remaps = ordered.map((segment) => new Int32Array(segment.size).fill(-1));
  const documents: DocumentRow[] = [];
  survivors.forEach((survivor, i) => {
    (remaps[survivor.source] as Int32Array)[survivor.ordinal] = i;
    const last = documents.at(-1);
    if (last !== undefined && documentKey(last.info) === survivor.key) last.end = i + 1;
    else documents.push({ info: infos.get(survivor.key) as DocumentInfo, start: i, end: i + 1 });
  });

  // Texts and positions, one source at a time.
  const newRecords = new Uint32Array(n * CHUNK_RECORD);
  let textLength = 0;
  for (const survivor of survivors)
    textLength += (records[survivor.source] as Uint32Array)[survivor.ordinal * CHUNK_RECORD + 5] as number;
  const texts = new Uint8Array(textLength);
  let cursor = 0;
  for (let s = 0; s < ordered.length; s += 1) {
    const remap = remaps[s] as Int32Array;
    if (!remap.some((target) => target >= 0)) continue;
    const sourceTexts = (await (ordered[s] as Segment).readGroup("texts")).raw("texts");
    const sourceRecords = records[s] as Uint32Array;
    remap.forEach((target, ordinal) => {
      if (target < 0) return;
      const at = ordinal * CHUNK_RECORD;
      const offset = sourceRecords[at + 4] as number;
      const length = sourceRecords[at + 5] as number;
      texts.set(sourceTexts.subarray(offset, offset + length), cursor);
      newRecords.set(sourceRecords.subarray(at, at + 4), target * CHUNK_RECORD);
      newRecords[target * CHUNK_RECORD + 4] = cursor;
      newRecords[target * CHUNK_RECORD + 5] = length;
      cursor += length;
    });
  }

  // Vectors, one source at a time.
  const vectors = new Float32Array(n * d);
  for (let s = 0; s < ordered.length; s += 1) {
    const remap = remaps[s] as Int32Array;
    if (!remap.some((target) => target >= 0)) continue;
    const segment = ordered[s] as Segment;
    const { rows, ordinals } = await segment.storedVectors();
    for (let row = 0; row < segment.size; row += 1) {
      const target = remap[ordinals === undefined ? row : (ordinals[row] as number)] as number;
      if (target >= 0) vectors.set(rows.subarray(row * d, (row + 1) * d), target * d);
    }
  }

  // BM25 postings.
  const postingSources: PostingSource[] = [];
  for (let s = 0; s < ordered.length; s += 1) {
    const segment = ordered[s] as Segment;
    const remap = remaps[s] as Int32Array;
    if (segment.size === 0 || !remap.some((target) => target >= 0)) continue;
    const [postings, tfs, lengths] = await Promise.all([
      segment.readGroup("postings"),
      segment.readGroup("tfs"),
      segment.readGroup("lengths"),
    ]);
    const { terms, start } = segment.terms;
    const data = postings.raw("data");
    // Each term's block is its documents then its weights: gather the documents into one array.
    const docs = new Uint32Array(start[terms.size] as number);
    const all = u32View(data);
    for (let t = 0; t < terms.size; t += 1) {
      const first = start[t] as number;
      const df = (start[t + 1] as number) - first;
      docs.set(all.subarray(first * 2, first * 2 + df), first);
    }
    postingSources.push({
      termCount: terms.size,
      compareTerm: (t, key) => terms.compare(t, key),
      termBytes: (t) => terms.blob.subarray(terms.offsets[t] as number, terms.offsets[t + 1] as number),
      start,
      docs,
      tfs: tfs.u16("tfs"),
      lengths: lengths.u32("lengths"),
      remap,
    });
  }
  const bm25 = mergeBm25Postings(postingSources, n, params);
  postingSources.length = 0;

  const header: SegmentContent["header"] = {
    segmentId: newId,
    collection,
    chunkCount: n,
    documentCount: new Set(survivors.map((survivor) => survivor.documentId)).size,
    dimension: d,
    createdAt: ordered.at(-1)?.header.createdAt ?? new Date().toISOString(),
    mergedFrom: [...new Set(ordered.map((segment) => segment.id))],
    ...(model !== undefined ? { model } : {}),
  };
  return encodeContent({
    header,
    documents,
    chunkIds: survivors.map((survivor) => survivor.chunkId),
    records: newRecords,
    texts,
    bm25,
    vectors,
    ann: denseIndex(vectors, n, d, options.annMinChunks ?? DEFAULT_ANN_MIN_CHUNKS),
  });
}

/** `mergeSegmentParts`, opened in memory. */
export async function mergeSegments(
  segments: readonly Segment[],
  masked: ReadonlySet<string>,
  newId: string,
  options: MergeOptions = {},
): Promise<Segment> {
  return openEncoded(await mergeSegmentParts(segments, masked, newId, options));
}
