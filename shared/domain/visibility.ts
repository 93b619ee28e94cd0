/**
 * What search must not show, in one place. A collection's manifest lists masked revisions: tombstones
 * (documents deleted or replaced by a newer upload) and pending revisions (uploads whose job is not
 * COMPLETED: still running, or FAILED; see `hiddenRevisions` in manifest.ts). An entry is either a `documentKey`
 * (`<documentId>@<revision>`: that revision only) or a bare document id (every revision of it). Search
 * hides the chunks of masked documents before ranking; compaction drops tombstoned ones for good and
 * leaves segments holding pending ones unmerged.
 */
import { hiddenRevisions, type Manifest } from "./manifest.ts";
import { documentKey } from "./types.ts";

/** Every masked entry of a manifest: tombstones and pending revisions. */
export function maskedEntries(manifest: Pick<Manifest, "tombstones" | "pending">): Set<string> {
  return hiddenRevisions(manifest);
}

/** Whether a document revision is masked. */
export function isMasked(masked: ReadonlySet<string>, documentId: string, revision?: string): boolean {
  if (masked.size === 0) return false;
  return masked.has(documentId) || (revision ? masked.has(documentKey({ documentId, revision })) : false);
}

/**
 * The documents an entry can stand for, to look them up in a segment: the bare id (every revision), and
 * for each "@" in it the documentKey reading (an id may itself contain "@").
 */
export function maskTargets(entry: string): { documentId: string; revision?: string }[] {
  const targets: { documentId: string; revision?: string }[] = [{ documentId: entry }];
  for (let at = entry.indexOf("@"); at > 0; at = entry.indexOf("@", at + 1)) {
    const revision = entry.slice(at + 1);
    if (revision) targets.push({ documentId: entry.slice(0, at), revision });
  }
  return targets;
}
