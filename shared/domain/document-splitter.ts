import { type ChunkOptions, chunkDocument, type TokenCounter } from "./chunking.ts";
import { extractText } from "./extract.ts";
import type { Chunk } from "./types.ts";

/** Extraction then token-aware chunking: the split stage's whole transformation of a document. */
export function documentSplitter(tokens: TokenCounter, options: ChunkOptions = {}) {
  return async (documentId: string, bytes: Uint8Array, contentType: string): Promise<Chunk[]> =>
    chunkDocument(documentId, await extractText(bytes, contentType), tokens, options);
}
