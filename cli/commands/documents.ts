import type { DataDistillerClient } from "../api-client.ts";
import { print, printJson } from "../output.ts";

export async function deleteCommand(client: DataDistillerClient, documentId: string, options: { json?: boolean }) {
  const result = await client.deleteDocument(documentId);
  if (options.json) printJson(result);
  else print(`deleted ${result.documentId}: it no longer appears in search results`);
}
