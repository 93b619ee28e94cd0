/**
 * Small helpers for the binary segment layout: typed arrays over bytes, tables of UTF-8 strings
 * (offsets + one blob) searched without decoding, and a writer that lays out named blocks 8-byte
 * aligned so every numeric block can be viewed as a typed array in place.
 *
 * Typed arrays use the platform's byte order; segments are little-endian, and `assertLittleEndian`
 * refuses to read them elsewhere (every Lambda and development machine is little-endian).
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error("segments are little-endian; this platform is not");
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const utf8Bytes = (text: string): Uint8Array => encoder.encode(text);
export const utf8Text = (bytes: Uint8Array): string => decoder.decode(bytes);

/** `bytes` itself when its offset is a multiple of `alignment`, else an aligned copy. */
export function aligned(bytes: Uint8Array, alignment = 8): Uint8Array {
  if (bytes.byteOffset % alignment === 0) return bytes;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

export const u32View = (bytes: Uint8Array) => {
  const b = aligned(bytes, 4);
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
};
export const u16View = (bytes: Uint8Array) => {
  const b = aligned(bytes, 2);
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);
};
export const f32View = (bytes: Uint8Array) => {
  const b = aligned(bytes, 4);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
};
export const bytesOf = (array: ArrayBufferView) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** Lexicographic comparison of two byte ranges (UTF-8 byte order = code point order). */
export function compareBytes(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array): number {
  const aLength = aEnd - aStart;
  const n = Math.min(aLength, b.length);
  for (let i = 0; i < n; i += 1) {
    const diff = (a[aStart + i] as number) - (b[i] as number);
    if (diff !== 0) return diff;
  }
  return aLength - b.length;
}

/** Code point order of two strings (the order of their UTF-8 bytes). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x - y;
    if (x > 0xffff) i += 1;
  }
  return a.length - b.length;
}

/** 32-bit FNV-1a of a byte range. */
export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i += 1) {
    hash ^= bytes[i] as number;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A list of strings stored as UTF-8: `offsets[i]..offsets[i+1]` in `blob`. */
export class StringTable {
  constructor(
    readonly offsets: Uint32Array,
    readonly blob: Uint8Array,
  ) {}

  static encode(values: readonly string[]): { offsets: Uint32Array; blob: Uint8Array } {
    const parts = values.map(utf8Bytes);
    const offsets = new Uint32Array(values.length + 1);
    for (let i = 0; i < parts.length; i += 1) offsets[i + 1] = (offsets[i] as number) + (parts[i] as Uint8Array).length;
    const blob = new Uint8Array(offsets[values.length] as number);
    parts.forEach((part, i) => {
      blob.set(part, offsets[i] as number);
    });
    return { offsets, blob };
  }

  get size(): number {
    return this.offsets.length - 1;
  }

  get(i: number): string {
    return utf8Text(this.blob.subarray(this.offsets[i] as number, this.offsets[i + 1] as number));
  }

  compare(i: number, key: Uint8Array): number {
    return compareBytes(this.blob, this.offsets[i] as number, this.offsets[i + 1] as number, key);
  }

  equals(i: number, key: Uint8Array): boolean {
    const start = this.offsets[i] as number;
    const end = this.offsets[i + 1] as number;
    if (end - start !== key.length) return false;
    for (let j = 0; j < key.length; j += 1) if (this.blob[start + j] !== key[j]) return false;
    return true;
  }

  /** First index in [lo, hi) whose string is ≥ key, for a table sorted in byte order. */
  lowerBound(key: Uint8Array, lo = 0, hi = this.size): number {
    let low = lo;
    let high = hi;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.compare(mid, key) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  hash(i: number): number {
    return fnv1a(this.blob, this.offsets[i] as number, this.offsets[i + 1] as number);
  }
}

/**
 * An open-addressing hash table over a StringTable: slot → index + 1 (0 = empty), 2–4 slots per
 * entry, FNV-1a hashes, linear probing. Built once when a segment is written, stored with it.
 */
export function buildHashSlots(table: StringTable): Uint32Array {
  let size = 4;
  while (size < table.size * 2) size *= 2;
  const slots = new Uint32Array(size);
  const mask = size - 1;
  for (let i = 0; i < table.size; i += 1) {
    let slot = table.hash(i) & mask;
    while (slots[slot] !== 0) slot = (slot + 1) & mask;
    slots[slot] = i + 1;
  }
  return slots;
}

/** Index of `key` in a table hashed by `buildHashSlots`, or −1. */
export function hashLookup(table: StringTable, slots: Uint32Array, key: Uint8Array): number {
  if (slots.length === 0) return -1;
  const mask = slots.length - 1;
  let slot = fnv1a(key) & mask;
  for (;;) {
    const entry = slots[slot] as number;
    if (entry === 0) return -1;
    if (table.equals(entry - 1, key)) return entry - 1;
    slot = (slot + 1) & mask;
  }
}

export interface BlockRef {
  /** Byte offset from the start of the group. */
  offset: number;
  length: number;
}

/** Lays out named blocks back to back, each starting on an 8-byte boundary. */
export class GroupWriter {
  readonly blocks: Record<string, BlockRef> = {};
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  add(name: string, data: ArrayBufferView | Uint8Array): this {
    if (this.blocks[name] !== undefined) throw new Error(`block ${name} written twice`);
    const bytes = data instanceof Uint8Array ? data : bytesOf(data);
    this.blocks[name] = { offset: this.length, length: bytes.byteLength };
    if (bytes.byteLength > 0) this.parts.push(bytes);
    this.length += bytes.byteLength;
    const padding = (8 - (this.length % 8)) % 8;
    if (padding > 0) {
      this.parts.push(new Uint8Array(padding));
      this.length += padding;
    }
    return this;
  }

  addJson(name: string, value: unknown): this {
    return this.add(name, utf8Bytes(JSON.stringify(value)));
  }

  get byteLength(): number {
    return this.length;
  }

  /** The group's bytes as parts (not concatenated: large groups are written as they are). */
  chunks(): Uint8Array[] {
    return this.parts;
  }
}

/** Views over the blocks of one group read into memory. */
export class GroupReader {
  constructor(
    readonly bytes: Uint8Array,
    readonly blocks: Readonly<Record<string, BlockRef>>,
    private readonly where: string,
  ) {}

  raw(name: string): Uint8Array {
    const block = this.blocks[name];
    if (block === undefined) throw new Error(`${this.where}: missing block ${name}`);
    if (block.offset + block.length > this.bytes.length) throw new Error(`${this.where}: truncated block ${name}`);
    return this.bytes.subarray(block.offset, block.offset + block.length);
  }

  has(name: string): boolean {
    return this.blocks[name] !== undefined;
  }

  u32(name: string): Uint32Array {
    return u32View(this.raw(name));
  }

  u16(name: string): Uint16Array {
    return u16View(this.raw(name));
  }

  f32(name: string): Float32Array {
    return f32View(this.raw(name));
  }

  strings(offsets: string, blob: string): StringTable {
    return new StringTable(this.u32(offsets), this.raw(blob));
  }

  json<T>(name: string): T {
    return JSON.parse(utf8Text(this.raw(name))) as T;
  }
}
