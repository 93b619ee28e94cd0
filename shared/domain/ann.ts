/**
 * Approximate nearest neighbours for large segments: an inverted file with product-quantised
 * residuals (IVF-PQ), trained and encoded by faiss (`index_factory("IVF<nlist>,PQ<m>")`, inner
 * product), stored as plain arrays and searched here over typed arrays.
 *
 * faiss builds it; its serialization (`toBuffer()`) is parsed once, at build time, into the arrays a
 * segment stores: the coarse centroids, the PQ codebook, and the inverted lists (each list's codes and
 * the chunk ordinals they belong to). A search scores the query against every centroid, scans the
 * `nprobe` best lists with asymmetric distance computation (inner product with the centroid plus the
 * sum of per-sub-vector table lookups — exactly what faiss computes), and returns a shortlist that the
 * caller re-scores exactly with the stored float vectors. Searching in JS rather than in faiss lets a
 * query choose nprobe and skip masked chunks (deleted documents, filters) inside the scan, and needs no
 * deserialization when a segment opens: the arrays are views over the segment's bytes.
 */

import { selectTopK, TopK } from "./top-k.ts";
import { loadFaiss } from "./vector-index.ts";

export interface IvfPq {
  dimension: number;
  nlist: number;
  /** Sub-quantizers (bytes per code). */
  m: number;
  /** Coarse centroids, nlist × d. */
  centroids: Float32Array;
  /** PQ codebook, m × 256 × (d / m). */
  codebook: Float32Array;
  /** The codes of list l are slots [listOffsets[l], listOffsets[l+1]). */
  listOffsets: Uint32Array;
  /** Chunk ordinal per slot. */
  listIds: Uint32Array;
  /** m bytes per slot. */
  codes: Uint8Array;
}

/** Segments with fewer chunks are searched exactly (a flat index). */
export const DEFAULT_ANN_MIN_CHUNKS = 4096;

/** The IVF-PQ shape for n vectors of dimension d: ~√n lists (a power of two), 8 dimensions per code byte. */
export function ivfPqShape(n: number, d: number): { nlist: number; m: number } | undefined {
  const m = [8, 4, 2].map((dsub) => d / dsub).find((candidate) => Number.isInteger(candidate));
  if (m === undefined || n < 1024) return undefined;
  const nlist = 2 ** Math.max(4, Math.min(16, Math.round(Math.log2(Math.sqrt(n)))));
  return { nlist, m };
}

export interface FaissTrainable {
  train(x: number[]): void;
  add(x: number[]): void;
  search(x: number[], k: number): { distances: number[]; labels: number[] };
  toBuffer(): Buffer;
  isTrained(): boolean;
}

const ROWS_PER_ADD = 2048;
/**
 * faiss wants ≥ 39 training points per centroid (256 per PQ sub-quantizer, nlist for the coarse one);
 * more only makes training slower (its k-means runs 25 iterations over every training point). An evenly
 * spaced sample of that many rows, repeating rows when there are fewer.
 */
const TRAINING_POINTS_PER_CENTROID = 39;

/**
 * A faiss IVF-PQ index (inner product) trained and filled with the n × d row-major `vectors`
 * (normalised). Training uses an evenly spaced sample of rows (deterministic).
 */
export function trainFaissIvfPq(vectors: Float32Array, d: number, shape: { nlist: number; m: number }): FaissTrainable {
  const n = vectors.length / d;
  if (!Number.isInteger(n)) throw new Error("buildIvfPq: matrix size is not a multiple of the dimension");
  const { nlist, m } = shape;
  if (d % m !== 0) throw new Error(`buildIvfPq: dimension ${d} is not a multiple of ${m}`);
  const faiss = loadFaiss() as unknown as {
    Index: { fromFactory(d: number, description: string, metric: number): FaissTrainable };
  };
  // "np": no polysemous training (a code-reordering search faiss runs by default, costly and of no use here).
  const index = faiss.Index.fromFactory(d, `IVF${nlist},PQ${m}np`, 0 /* inner product */);
  // Segments with fewer rows than faiss asks for repeat some (it would warn, once per sub-quantizer).
  const sample = TRAINING_POINTS_PER_CENTROID * Math.max(nlist, 256);
  const training = new Array<number>(sample * d);
  for (let s = 0; s < sample; s += 1) {
    const row = Math.floor((s * n) / sample);
    for (let j = 0; j < d; j += 1) training[s * d + j] = vectors[row * d + j] as number;
  }
  index.train(training);
  training.length = 0;
  for (let row = 0; row < n; row += ROWS_PER_ADD) {
    index.add(Array.from(vectors.subarray(row * d, Math.min(n, row + ROWS_PER_ADD) * d)));
  }
  return index;
}

/** Trains an IVF-PQ index with faiss (`trainFaissIvfPq`) and returns its arrays. */
export function buildIvfPq(vectors: Float32Array, d: number, shape: { nlist: number; m: number }): IvfPq {
  return parseFaissIvfPq(trainFaissIvfPq(vectors, d, shape).toBuffer(), vectors.length / d);
}

/**
 * Reads faiss's IVF-PQ serialization (index_write.cpp: "IwPQ"/"IvPQ", the IVF header with an IndexFlatIP
 * quantizer and no direct map, by_residual, the product quantizer, "ilar" array inverted lists).
 */
export function parseFaissIvfPq(buffer: Uint8Array, expectedCount: number): IvfPq {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`unsupported faiss IVF-PQ serialization: ${what}`);
  };
  const fourcc = () => {
    const text = String.fromCharCode(...buffer.subarray(at, at + 4));
    at += 4;
    return text;
  };
  const i32 = () => {
    const value = view.getInt32(at, true);
    at += 4;
    return value;
  };
  const i64 = () => {
    const value = Number(view.getBigInt64(at, true));
    at += 8;
    return value;
  };
  const u8 = () => buffer[at++] as number;
  const floats = (count: number) => {
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(buffer.subarray(at, at + count * 4));
    at += count * 4;
    return out;
  };
  const indexHeader = () => ({ d: i32(), ntotal: i64(), dummy1: i64(), dummy2: i64(), trained: u8(), metric: i32() });

  const kind = fourcc();
  if (kind !== "IwPQ" && kind !== "IvPQ") fail(`fourcc ${kind}`);
  const header = indexHeader();
  if (header.metric !== 0) fail("metric is not inner product");
  if (header.ntotal !== expectedCount) fail(`holds ${header.ntotal} vectors, expected ${expectedCount}`);
  const d = header.d;
  const nlist = i64();
  i64(); // nprobe
  if (fourcc() !== "IxFI") fail("coarse quantizer is not IndexFlatIP");
  const quantizer = indexHeader();
  if (quantizer.d !== d || quantizer.ntotal !== nlist) fail("coarse quantizer shape");
  if (i64() !== nlist * d) fail("centroid count");
  const centroids = floats(nlist * d);
  if (u8() !== 0) fail("direct map");
  if (i64() !== 0) fail("direct map entries");
  if (u8() !== 1) fail("codes are not residuals");
  const codeSize = i64();
  const pqD = i64();
  const m = i64();
  const nbits = i64();
  if (pqD !== d || nbits !== 8 || codeSize !== m) fail("product quantizer shape");
  const dsub = d / m;
  if (i64() !== m * 256 * dsub) fail("codebook size");
  const codebook = floats(m * 256 * dsub);
  if (fourcc() !== "ilar") fail("inverted lists are not array lists");
  if (i64() !== nlist || i64() !== codeSize) fail("inverted lists shape");
  const listType = fourcc();
  const sizes = new Array<number>(nlist).fill(0);
  const entries = i64();
  if (listType === "full") {
    if (entries !== nlist) fail("list sizes");
    for (let l = 0; l < nlist; l += 1) sizes[l] = i64();
  } else if (listType === "sprs") {
    for (let e = 0; e < entries; e += 2) {
      const list = i64();
      sizes[list] = i64();
    }
  } else fail(`list type ${listType}`);
  const listOffsets = new Uint32Array(nlist + 1);
  for (let l = 0; l < nlist; l += 1) listOffsets[l + 1] = (listOffsets[l] as number) + (sizes[l] as number);
  if (listOffsets[nlist] !== expectedCount) fail("inverted lists do not hold every vector");
  const codes = new Uint8Array(expectedCount * m);
  const listIds = new Uint32Array(expectedCount);
  for (let l = 0; l < nlist; l += 1) {
    const size = sizes[l] as number;
    if (size === 0) continue;
    const first = listOffsets[l] as number;
    codes.set(buffer.subarray(at, at + size * m), first * m);
    at += size * m;
    for (let i = 0; i < size; i += 1) listIds[first + i] = i64();
  }
  if (at !== buffer.length) fail("trailing bytes");
  return { dimension: d, nlist, m, centroids, codebook, listOffsets, listIds, codes };
}

export interface AnnSearchOptions {
  /** Lists scanned (more = better recall, slower). */
  nprobe: number;
  /** Only ordinals with a non-zero entry are returned. */
  allow?: Uint8Array;
  /** How many of the segment's chunks `allow` lets through (computed when omitted). */
  allowed?: number;
}

/**
 * The `r` best chunks by approximate inner product with the (normalised) query, best first. With a
 * mask, more lists are scanned in proportion to what the mask removes, so a selective filter still
 * finds about as many candidates.
 */
export function searchIvfPq(
  index: IvfPq,
  query: Float32Array,
  r: number,
  options: AnnSearchOptions,
): { ordinal: number; score: number }[] {
  const { dimension: d, nlist, m, centroids, codebook, listOffsets, listIds, codes } = index;
  const n = listIds.length;
  if (r <= 0 || n === 0) return [];
  const { allow } = options;
  let nprobe = Math.max(1, Math.min(nlist, Math.floor(options.nprobe)));
  if (allow !== undefined) {
    let allowed = options.allowed;
    if (allowed === undefined) {
      allowed = 0;
      for (let i = 0; i < n; i += 1) if (allow[i] !== 0) allowed += 1;
    }
    if (allowed === 0) return [];
    nprobe = Math.min(nlist, Math.ceil((nprobe * n) / allowed));
  }
  const coarse = new Float32Array(nlist);
  for (let l = 0; l < nlist; l += 1) {
    let dot = 0;
    const base = l * d;
    for (let j = 0; j < d; j += 1) dot += (query[j] as number) * (centroids[base + j] as number);
    coarse[l] = dot;
  }
  const lists =
    nprobe >= nlist
      ? Array.from({ length: nlist }, (_, l) => l)
      : selectTopK(
          Array.from({ length: nlist }, (_, l) => l),
          (l) => coarse[l] as number,
          nprobe,
        );
  const dsub = d / m;
  const table = new Float32Array(m * 256);
  for (let s = 0; s < m; s += 1) {
    const q = s * dsub;
    for (let c = 0; c < 256; c += 1) {
      let dot = 0;
      const base = (s * 256 + c) * dsub;
      for (let j = 0; j < dsub; j += 1) dot += (query[q + j] as number) * (codebook[base + j] as number);
      table[s * 256 + c] = dot;
    }
  }
  // Every code of the probed lists is pushed straight into a bounded heap: most fall below its
  // threshold, and nothing is collected first.
  const top = new TopK(r);
  const tableLength = m * 256;
  for (const l of lists) {
    const end = listOffsets[l + 1] as number;
    const base = coarse[l] as number;
    for (let slot = listOffsets[l] as number; slot < end; slot += 1) {
      const label = listIds[slot] as number;
      if (allow !== undefined && allow[label] === 0) continue;
      // Four sub-quantizers per step (m is a multiple of 4 for every shape ivfPqShape gives).
      let score = base;
      let code = slot * m;
      let s = 0;
      for (; s + 1024 <= tableLength; s += 1024, code += 4) {
        score +=
          (table[s + (codes[code] as number)] as number) +
          (table[s + 256 + (codes[code + 1] as number)] as number) +
          (table[s + 512 + (codes[code + 2] as number)] as number) +
          (table[s + 768 + (codes[code + 3] as number)] as number);
      }
      for (; s < tableLength; s += 256, code += 1) score += table[s + (codes[code] as number)] as number;
      // (A cheap test first: most codes fall below the heap; ties are left to the heap.)
      if (score >= top.threshold) top.push(label, score);
    }
  }
  return top.sorted().map(({ index, score }) => ({ ordinal: index, score }));
}
