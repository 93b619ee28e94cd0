import type { ManifestStore } from "../adapters/manifest-store.ts";
import { documentKey } from "../domain/types.ts";

/**
 * Deletes a document from search: its live revision is tombstoned in its collection's manifest
 * at once (search stops showing it on its next manifest read) and compaction later drops its
 * chunks. Returns undefined when the tenant has no such live document.
 */
export async function deleteDocument(
  tenant: string,
  documentId: string,
  manifests: Pick<ManifestStore, "liveRevision" | "addTombstone" | "forgetDocument">,
): Promise<{ documentId: string; collection: string; revision: string } | undefined> {
  const live = await manifests.liveRevision(tenant, documentId);
  if (!live) return undefined;
  await manifests.addTombstone(tenant, live.collection, documentKey({ documentId, revision: live.id }));
  await manifests.forgetDocument(tenant, documentId);
  return { documentId, collection: live.collection, revision: live.id };
}
