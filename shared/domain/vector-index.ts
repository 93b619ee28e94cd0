/**
 * Dense retrieval over faiss-node's `IndexFlatIP` (exact inner product; on L2-normalised vectors that
 * is cosine similarity).
 *
 * faiss assigns sequential labels 0..n−1 in insertion order; `VectorIndex` keeps the label → id array.
 * The raw vectors are also kept as one Float32Array (at build time we have them; `fromBuffer` reads
 * them from the tail of the IndexFlat serialization, see `flatVectorsFromFaissBuffer`), because
 * faiss-node exposes no `reconstruct()`: compaction rebuilds from them, and filtered searches that would
 * discard most of faiss's results scan just the allowed rows instead.
 *
 * faiss-node is a native addon loaded on first use, so modules that only import types from here do not
 * need it.
 */
import { createRequire } from "node:module";
import { selectTopK } from "./top-k.ts";

/** The part of faiss-node's API used here (see node_modules/faiss-node/lib/index.d.ts). */
export interface FaissIndex {
  ntotal(): number;
  getDimension(): number;
  add(x: number[]): void;
  search(x: number[], k: number): { distances: number[]; labels: number[] };
  toBuffer(): Buffer;
}

interface FaissModule {
  IndexFlatIP: { new (d: number): FaissIndex; fromBuffer(src: Buffer): FaissIndex };
  Index: { fromFactory(d: number, description: string, metric: number): FaissIndex };
}

let faissModule: FaissModule | undefined;

/** Loads faiss-node (once); throws a clear error when the native addon is missing or not built. */
export function loadFaiss(): FaissModule {
  if (faissModule === undefined) {
    // faiss parallelises training with OpenMP, whose threads spin-wait at every barrier: with more threads
    // than free cores (a 2 GB Lambda has about one vCPU; a busy machine) a k-means step waits on a
    // descheduled thread, and training an IVF-PQ index ran over 3× slower in wall time than on one
    // thread here. One thread unless the environment says otherwise (read when the library loads).
    process.env.OMP_NUM_THREADS ??= "1";
    try {
      faissModule = createRequire(import.meta.url)("faiss-node") as FaissModule;
    } catch (error) {
      throw new Error(
        `faiss-node could not be loaded (is the native addon installed and built?): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return faissModule;
}

export interface VectorHit {
  id: string;
  /** Inner product with the (normalised) query: cosine similarity. */
  score: number;
  /** The faiss label (= position in `ids`). */
  label: number;
}

export interface VectorSearchOptions {
  /** Only labels with a non-zero entry may be returned. */
  allow?: Uint8Array;
}

export type VectorInput = Float32Array | readonly number[];

/** How many results faiss may return to serve a filtered query before an exact scan of the allowed rows is cheaper. */
const MAX_FAISS_OVERFETCH = 4096;
/** Multiply-adds under which a filtered query scans the allowed rows in JS instead of asking faiss. */
const SCAN_BUDGET = 256 * 1024;

/** L2-normalises `vector` into `out` (all zeros stay zeros); returns `out`. */
export function normalizeInto(vector: VectorInput, out: Float32Array, offset = 0): Float32Array {
  const d = vector.length;
  let norm = 0;
  for (let i = 0; i < d; i += 1) {
    const x = vector[i] as number;
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < d; i += 1) out[offset + i] = (vector[i] as number) * scale;
  return out;
}

/**
 * Reads the vectors out of an `IndexFlat` serialization: after the index header the vectors are written
 * as a 64-bit element count (n·d, whether faiss stores them as floats or as bytes/4) followed by n·d
 * little-endian float32 — the last 4·n·d bytes of the buffer.
 */
export function flatVectorsFromFaissBuffer(buffer: Uint8Array, count: number, dimension: number): Float32Array {
  const fourcc = String.fromCharCode(...buffer.subarray(0, 4));
  if (!fourcc.startsWith("IxF")) throw new Error(`not a faiss flat index (fourcc ${JSON.stringify(fourcc)})`);
  const values = count * dimension;
  const dataStart = buffer.length - values * 4;
  if (dataStart < 12) throw new Error("faiss flat index buffer too short");
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const header = { d: view.getInt32(4, true), n: Number(view.getBigInt64(8, true)) };
  const stored = Number(view.getBigUint64(dataStart - 8, true));
  if (header.d !== dimension || header.n !== count || stored !== values) {
    throw new Error("unsupported faiss IndexFlat serialization layout");
  }
  // Copy: the data is not 4-byte aligned within the buffer.
  const bytes = new Uint8Array(values * 4);
  bytes.set(buffer.subarray(dataStart));
  return new Float32Array(bytes.buffer);
}

/**
 * faiss's serialization of an `IndexFlatIP` holding `vectors`, written directly: the header faiss writes
 * for an empty index of this dimension with ntotal patched, then the n·d float count and the floats. One
 * copy of the vectors (instead of handing faiss `add()` a JS array of n·d numbers).
 */
function flatBuffer(vectors: Float32Array, dimension: number): Buffer {
  const { IndexFlatIP } = loadFaiss();
  const empty = new IndexFlatIP(dimension).toBuffer();
  const count = vectors.length / dimension;
  const head = Buffer.from(empty.subarray(0, empty.length - 8));
  if (
    head.toString("latin1", 0, 4) !== "IxFI" ||
    head.readInt32LE(4) !== dimension ||
    empty.readBigUInt64LE(empty.length - 8) !== 0n
  ) {
    throw new Error("unsupported faiss IndexFlat serialization layout");
  }
  head.writeBigInt64LE(BigInt(count), 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(vectors.length));
  return Buffer.concat([head, size, Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength)]);
}

/** A hit of a label-only index: the row (chunk ordinal) and its inner product with the query. */
export interface LabelHit {
  ordinal: number;
  score: number;
}

/**
 * Exact inner-product search over an n × d matrix of normalised vectors (rows = labels): faiss
 * `IndexFlatIP` for whole-index queries, an exact scan of the allowed rows for filtered ones when that
 * is cheaper. The matrix stays readable (`vector`), since faiss-node has no `reconstruct()`.
 */
export class FlatIndex {
  private constructor(
    readonly vectors: Float32Array,
    readonly dimension: number,
    private readonly faiss: FaissIndex | undefined,
  ) {}

  /** Indexes the rows of `vectors` (already normalised). */
  static fromVectors(vectors: Float32Array, dimension: number): FlatIndex {
    if (dimension === 0) {
      if (vectors.length > 0) throw new Error("FlatIndex: vectors must have a dimension");
      return new FlatIndex(vectors, dimension, undefined);
    }
    if (vectors.length % dimension !== 0) throw new Error("FlatIndex: matrix size is not a multiple of the dimension");
    const { IndexFlatIP } = loadFaiss();
    return new FlatIndex(vectors, dimension, IndexFlatIP.fromBuffer(flatBuffer(vectors, dimension)));
  }

  get size(): number {
    return this.dimension === 0 ? 0 : this.vectors.length / this.dimension;
  }

  vector(label: number): Float32Array {
    if (!(label >= 0 && label < this.size)) throw new RangeError(`label ${label} out of range`);
    return this.vectors.subarray(label * this.dimension, (label + 1) * this.dimension);
  }

  /** faiss's own serialization of the index. */
  toBuffer(): Buffer {
    return this.faiss === undefined ? Buffer.alloc(0) : this.faiss.toBuffer();
  }

  /** The `k` best rows for a normalised query, best first; with `allow`, only rows it allows. */
  search(q: Float32Array, k: number, allow?: Uint8Array): LabelHit[] {
    const n = this.size;
    if (k <= 0 || n === 0) return [];
    if (q.length !== this.dimension) {
      throw new Error(`vector search: query has dimension ${q.length}, index has ${this.dimension}`);
    }
    if (allow === undefined) return this.faissSearch(q, Math.min(k, n));
    let allowed = 0;
    for (let i = 0; i < n; i += 1) if (allow[i] !== 0) allowed += 1;
    if (allowed === 0) return [];
    // Few allowed rows: scanning them is cheaper than any faiss call that must return them.
    if (allowed * this.dimension <= SCAN_BUDGET) return this.scan(q, k, allow, allowed);
    // faiss's top (k + excluded) necessarily contains the allowed top k.
    const fetch = Math.min(n, Math.min(k, allowed) + (n - allowed));
    if (fetch <= MAX_FAISS_OVERFETCH || allowed * 2 > n) {
      return this.faissSearch(q, fetch)
        .filter((hit) => allow[hit.ordinal] !== 0)
        .slice(0, k);
    }
    return this.scan(q, k, allow, allowed);
  }

  private faissSearch(q: Float32Array, k: number): LabelHit[] {
    const { distances, labels } = (this.faiss as FaissIndex).search(Array.from(q), k);
    const hits: LabelHit[] = [];
    for (let i = 0; i < labels.length; i += 1) {
      const label = labels[i] as number;
      if (label >= 0) hits.push({ ordinal: label, score: distances[i] as number });
    }
    return hits;
  }

  /** Exact scan of the allowed rows in JS. */
  private scan(q: Float32Array, k: number, allow: Uint8Array, allowed: number): LabelHit[] {
    const flat = this.vectors;
    const d = this.dimension;
    const labels = new Int32Array(allowed);
    const scores = new Float64Array(allowed);
    let m = 0;
    for (let label = 0; label < this.size; label += 1) {
      if (allow[label] === 0) continue;
      let dot = 0;
      const base = label * d;
      for (let j = 0; j < d; j += 1) dot += (q[j] as number) * (flat[base + j] as number);
      labels[m] = label;
      scores[m] = dot;
      m += 1;
    }
    const slots = Int32Array.from({ length: m }, (_, i) => i);
    return selectTopK(slots, (slot) => scores[slot] as number, k).map((slot) => ({
      ordinal: labels[slot] as number,
      score: Math.fround(scores[slot] as number),
    }));
  }
}

/** An immutable exact (flat) inner-product index with string ids. */
export class VectorIndex {
  readonly ids: readonly string[];
  private readonly flat: FlatIndex;

  private constructor(ids: readonly string[], flat: FlatIndex) {
    this.ids = ids;
    this.flat = flat;
  }

  get dimension(): number {
    return this.flat.dimension;
  }

  /**
   * Indexes `vectors[i]` under `ids[i]`. Vectors are L2-normalised on the way in. `dimension` is only
   * needed for an empty index that must still report one.
   */
  static build(
    ids: readonly string[],
    vectors: readonly VectorInput[],
    options: { dimension?: number } = {},
  ): VectorIndex {
    if (ids.length !== vectors.length) throw new Error("VectorIndex.build: ids and vectors differ in length");
    const dimension = vectors[0]?.length ?? options.dimension ?? 0;
    const flat = new Float32Array(vectors.length * dimension);
    vectors.forEach((vector, i) => {
      if (vector.length !== dimension) {
        throw new Error(`VectorIndex.build: vector ${i} has dimension ${vector.length}, expected ${dimension}`);
      }
      normalizeInto(vector, flat, i * dimension);
    });
    return VectorIndex.fromFlat(ids, flat, dimension);
  }

  /** Indexes an n×d row-major matrix of vectors that are already normalised. */
  static fromFlat(ids: readonly string[], flat: Float32Array, dimension: number): VectorIndex {
    if (flat.length !== ids.length * dimension) throw new Error("VectorIndex.fromFlat: matrix size mismatch");
    if (dimension === 0 && ids.length > 0) throw new Error("VectorIndex.fromFlat: vectors must have a dimension");
    const index = FlatIndex.fromVectors(flat, dimension);
    return new VectorIndex([...ids], dimension === 0 ? FlatIndex.fromVectors(flat, 0) : index);
  }

  /**
   * Loads a faiss buffer written by `toBuffer()`; `ids[label]` names each vector (faiss stores no ids).
   * An empty buffer is an empty index.
   */
  static fromBuffer(buffer: Uint8Array, ids: readonly string[]): VectorIndex {
    if (buffer.length === 0) {
      if (ids.length > 0) throw new Error("VectorIndex.fromBuffer: empty buffer but ids given");
      return new VectorIndex([], FlatIndex.fromVectors(new Float32Array(0), 0));
    }
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const dimension = view.getInt32(4, true);
    const count = Number(view.getBigInt64(8, true));
    if (count !== ids.length) {
      throw new Error(`VectorIndex.fromBuffer: index holds ${count} vectors but ${ids.length} ids given`);
    }
    return VectorIndex.fromFlat(ids, flatVectorsFromFaissBuffer(buffer, ids.length, dimension), dimension);
  }

  get size(): number {
    return this.ids.length;
  }

  /** All vectors as one n×d row-major Float32Array (normalised). */
  vectors(): Float32Array {
    return this.flat.vectors;
  }

  /** The stored (normalised) vector with this label. */
  vector(label: number): Float32Array {
    if (!(label >= 0 && label < this.ids.length)) throw new RangeError(`label ${label} out of range`);
    return this.flat.vector(label);
  }

  /** The faiss serialization (`Index.toBuffer()`); empty for an index without a dimension. */
  toBuffer(): Buffer {
    return this.flat.toBuffer();
  }

  /**
   * The `k` nearest vectors to `query` by inner product (the query is normalised, so scores are
   * cosines), best first. `k` is clamped to the index size; an empty index returns [].
   */
  search(query: VectorInput, k: number, options: VectorSearchOptions = {}): VectorHit[] {
    if (k <= 0 || this.ids.length === 0) return [];
    if (query.length !== this.dimension) {
      throw new Error(`VectorIndex.search: query has dimension ${query.length}, index has ${this.dimension}`);
    }
    const q = normalizeInto(query, new Float32Array(this.dimension));
    return this.flat
      .search(q, k, options.allow)
      .map((hit) => ({ id: this.ids[hit.ordinal] as string, score: hit.score, label: hit.ordinal }));
  }
}
