/**
 * Which segments compaction merges next: size-tiered merging of neighbours, bounded by a maximum segment
 * size, so no merge's memory or time grows with the collection and each chunk is rewritten a logarithmic
 * number of times.
 *
 * A segment's tier is 0 below `floorChunks`, else 1 + ⌊log_F(chunks / floorChunks)⌋ (F = `factor`).
 * Segments are kept in age order (the manifest's); a merge takes F neighbours of one tier (oldest run
 * first), whose sum is at least F times the tier's floor: the result sits at least one tier up. A merge
 * never produces more than `maxChunks` chunks; segments above half of it are final. So a chunk is rewritten
 * at most once per tier, about log_F(maxChunks / floorChunks) + 1 times whatever the collection's size
 * (4 times from 1k to 256k chunks with F = 4), and a collection of N chunks has about N / maxChunks final
 * segments plus at most F − 1 per tier below. Merging neighbours only keeps age order meaningful: a merged
 * segment takes its newest source's age, and no segment outside the merge lies between its sources.
 *
 * Segments also get rewritten alone when they are in the old format (version 1) or when masked
 * (deleted, replaced) documents make up `rewriteMaskedShare` of them.
 */

export interface CompactionPolicy {
  /** Segments merged at once (and the size ratio between tiers). */
  factor: number;
  /** Segments below this size are all tier 0. */
  floorChunks: number;
  /** No merge produces a larger segment. */
  maxChunks: number;
  /** A segment at least this share masked is rewritten to drop those chunks. */
  rewriteMaskedShare: number;
}

export const DEFAULT_COMPACTION_POLICY: Readonly<CompactionPolicy> = Object.freeze({
  factor: 4,
  floorChunks: 1024,
  maxChunks: 262_144,
  rewriteMaskedShare: 0.3,
});

export interface SegmentSize {
  id: string;
  chunks: number;
  /** Segment format version (refs written before version 2 have none). */
  format?: number;
}

export function tierOf(chunks: number, policy: CompactionPolicy): number {
  if (chunks < policy.floorChunks) return 0;
  return 1 + Math.floor(Math.log(chunks / policy.floorChunks) / Math.log(policy.factor) + 1e-9);
}

/**
 * The ids of the next segments to merge (in age order), or undefined when the collection is compact.
 * `segments` are in age order; `maskedChunks` (optional) counts each segment's masked chunks.
 */
export function nextMerge(
  segments: readonly SegmentSize[],
  policy: CompactionPolicy,
  maskedChunks?: ReadonlyMap<string, number>,
): string[] | undefined {
  // Old-format segments first (rewritten in the current format), then segments mostly masked.
  for (const segment of segments) {
    if ((segment.format ?? 1) < 2 && segment.chunks <= policy.maxChunks) return [segment.id];
  }
  for (const segment of segments) {
    const masked = maskedChunks?.get(segment.id) ?? 0;
    if (masked > 0 && masked >= policy.rewriteMaskedShare * segment.chunks) return [segment.id];
  }
  let run: SegmentSize[] = [];
  let runTier = -1;
  for (const segment of segments) {
    const final = segment.chunks * 2 > policy.maxChunks;
    const tier = tierOf(segment.chunks, policy);
    if (final || tier !== runTier) {
      run = [];
      runTier = final ? -1 : tier;
    }
    if (final) continue;
    run.push(segment);
    if (run.length === policy.factor) {
      // Keep the merged size within bounds: drop the newest members until it fits (at least two).
      let members = run;
      while (members.length > 2 && members.reduce((sum, s) => sum + s.chunks, 0) > policy.maxChunks) {
        members = members.slice(0, -1);
      }
      if (members.reduce((sum, s) => sum + s.chunks, 0) <= policy.maxChunks) return members.map((s) => s.id);
      run = run.slice(1);
    }
  }
  return undefined;
}
