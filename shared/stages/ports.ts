/** What the stages need from storage, beside the stores they take as narrow `Pick<…>`s. */
import type { ByteSource } from "../domain/segment.ts";

/** Encoded segments in the index bucket. */
export interface SegmentBlobs {
  /** Writes a segment (a list of parts is one object). */
  write(key: string, body: Uint8Array | readonly Uint8Array[]): Promise<void>;
  read(key: string): Promise<Uint8Array>;
  /** Reads the object by byte ranges (and from a local copy once there is one); without it, `read` whole. */
  source?(key: string, size: number): ByteSource;
  /** Starts caching the whole object locally. */
  prefetch?(key: string, size: number): Promise<void>;
  /** Forgets local copies of every object but these. */
  retain?(keys: ReadonlySet<string>): void;
  delete?(key: string): Promise<void>;
}
