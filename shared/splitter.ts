import { type ChunkOptions, chunkDocument, type TokenCounter } from "./chunking.ts";
import { extractText } from "./extract.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import type { Chunk } from "./types.ts";

/**
 * Token counts in the embedder's word pieces. The chunk budget (200) stays below the model's
 * 256-token window with room for its [CLS]/[SEP].
 */
export const embedderTokenCounter = (tokenizer: TextTokenizer): TokenCounter => ({
  count: (text) => tokenizer.countTokens(text),
});

/** Extraction then token-aware chunking: the split stage's whole transformation of a document. */
export function documentSplitter(tokens: TokenCounter, options: ChunkOptions = {}) {
  return async (documentId: string, bytes: Uint8Array, contentType: string): Promise<Chunk[]> =>
    chunkDocument(documentId, await extractText(bytes, contentType), tokens, options);
}
