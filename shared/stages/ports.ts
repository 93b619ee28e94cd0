/** What the stages need from storage, beside the stores they take as narrow `Pick<…>`s. */

/** Encoded segments in the index bucket. */
export interface SegmentBlobs {
  write(key: string, bytes: Uint8Array): Promise<void>;
  read(key: string): Promise<Uint8Array>;
}
