/**
 * BM25 keyword retrieval: the text analysis shared by indexing, querying and highlighting, and
 * `Bm25Index`, a search-optimised wrapper around a wink-bm25-text-search model.
 *
 * Analysis (`analyze` / `prepareText`), in order:
 *  1. tokenize the original text with an offset-preserving Unicode scan: runs of letters, marks and
 *     digits, keeping word-internal apostrophes ("patient's", "isn't"); any other character separates;
 *  2. fold: lower case, compatibility-decompose and drop diacritics (naïve → naive), ’ → ';
 *  3. elisions: "n't" becomes the base word plus "not" (won't → will not), other clitics are removed
 *     ('s 'd 'm 'll 've 're), apostrophes left inside names are dropped (o'brien → obrien);
 *  4. drop the wink-nlp-utils English stop words (checked before and after the elision step);
 *  5. stem with Porter 2 (wink-nlp-utils `string.stem`), memoised.
 * Negations are not propagated ("not good" stays two terms): a `!good` term would split the statistics
 * of "good" and hurt recall; negation is the cross-encoder's job.
 *
 * Index storage: collections of 3 or more documents are consolidated by wink-bm25-text-search and stored
 * as its `exportJSON()` (a JSON array). wink refuses to consolidate fewer than 3 documents; those are
 * stored in a small "exact" format (term counts per document) and scored with the same formula, so the
 * two kinds rank and score identically (a unit test checks this against wink itself). Padding with dummy
 * documents was rejected: it changes N and the average length, so it changes every score.
 *
 * Scoring (both kinds, wink's defaults): idf = ln(1 + (N − df + 0.5)/(df + 0.5)),
 * tf part = tf·(k1+1)/(tf + k1·(1 − b + b·len/avglen)), k1 = 1.2, b = 0.75. Loading converts the model
 * to compressed postings (typed arrays), so a query touches only the postings of its terms; callers that
 * search several indexes can pass collection-wide idf values so the scores are comparable.
 */
// wink-nlp-utils and wink-bm25-text-search ship no type declarations: typed below. Static imports (not
// createRequire) so the Lambda bundler includes them. The two wink-nlp-utils modules are imported
// directly: its index also loads wink-nlp and an English model (~200 ms of cold start) that is not used.
// @ts-expect-error -- untyped CommonJS module
import winkBm25 from "wink-bm25-text-search";
import stopWordList from "wink-nlp-utils/src/dictionaries/stop_words.json" with { type: "json" };
// @ts-expect-error -- untyped CommonJS module
import winkStem from "wink-nlp-utils/src/string-stem.js";
import { compareCodePoints } from "./binary.ts";
import { selectTopK, TopK } from "./top-k.ts";

/** Porter 2 stemmer (the one behind wink-nlp-utils `string.stem` / `tokens.stem`). */
const porter2 = winkStem as (word: string) => string;
/** wink-nlp-utils default English stop words (used by `tokens.removeWords`). */
const STOP_WORDS: ReadonlySet<string> = new Set(stopWordList as string[]);
const createWinkEngine = winkBm25 as () => WinkEngine;

/** wink-bm25-text-search refuses to consolidate fewer documents than this. */
export const WINK_MIN_DOCS = 3;
/** Decimal places wink keeps for the consolidated term weights (its default is 4). */
const WINK_PRECISION = 6;
const EXACT_FORMAT = "datadistiller-bm25-exact";

export interface Bm25Params {
  /** Term-frequency saturation. */
  k1: number;
  /** Length normalisation. */
  b: number;
  /** idf smoothing: idf = ln((N − df + 0.5)/(df + 0.5) + k). */
  k: number;
}

export const DEFAULT_BM25_PARAMS: Readonly<Bm25Params> = Object.freeze({ k1: 1.2, b: 0.75, k: 1 });

// ---------------------------------------------------------------------------------------------
// Text analysis

export interface AnalyzedToken {
  /** The index term (folded, stemmed). */
  term: string;
  /** Offsets [start, end) of the source word in the analysed text. */
  start: number;
  end: number;
}

const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:['’][\p{L}\p{M}\p{N}]+)*/gu;
const NON_ASCII = /\P{ASCII}/u;
const MARKS = /\p{M}+/gu;
const CLITIC = /'(?:s|d|m|ll|ve|re)$/;
const IRREGULAR_NOT: Readonly<Record<string, string>> = { ca: "can", wo: "will", sha: "shall" };
/** Words longer than this are not indexed (hashes, base64, run-together junk). */
const MAX_WORD_LENGTH = 64;
const STEM_CACHE_LIMIT = 200_000;

const stemCache = new Map<string, string>();

function stem(word: string): string {
  let stemmed = stemCache.get(word);
  if (stemmed === undefined) {
    stemmed = porter2(word);
    if (stemCache.size >= STEM_CACHE_LIMIT) stemCache.clear();
    stemCache.set(word, stemmed);
  }
  return stemmed;
}

function fold(word: string): string {
  let folded = word.toLowerCase();
  if (NON_ASCII.test(folded)) folded = folded.normalize("NFKD").replace(MARKS, "").replaceAll("’", "'");
  return folded;
}

/** Calls `emit` with the index terms of one source word (0, 1 or 2 terms). */
function wordTerms(raw: string, emit: (term: string) => void): void {
  if (raw.length > MAX_WORD_LENGTH) return;
  let word = fold(raw);
  if (STOP_WORDS.has(word)) return;
  if (word.includes("'")) {
    if (word.endsWith("n't")) {
      const base = word.slice(0, -3);
      const full = IRREGULAR_NOT[base] ?? base;
      if (full.length > 0 && !STOP_WORDS.has(full)) emit(stem(full));
      emit("not");
      return;
    }
    word = word.replace(CLITIC, "").replaceAll("'", "");
    if (word.length === 0 || STOP_WORDS.has(word)) return;
  }
  emit(stem(word));
}

/** The index terms of `text`, in order (what BM25 indexes and searches). */
export function prepareText(text: string): string[] {
  const terms: string[] = [];
  const emit = (term: string) => {
    terms.push(term);
  };
  for (const match of text.matchAll(WORD)) wordTerms(match[0], emit);
  return terms;
}

/** The index terms of `text` with the offsets of the words they come from (for highlighting). */
export function analyze(text: string): AnalyzedToken[] {
  const tokens: AnalyzedToken[] = [];
  for (const match of text.matchAll(WORD)) {
    const start = match.index;
    const end = start + match[0].length;
    wordTerms(match[0], (term) => tokens.push({ term, start, end }));
  }
  return tokens;
}

/** BM25 inverse document frequency, as wink computes it. */
export function bm25Idf(docCount: number, documentFrequency: number, k: number = DEFAULT_BM25_PARAMS.k): number {
  return Math.log((docCount - documentFrequency + 0.5) / (documentFrequency + 0.5) + k);
}

// ---------------------------------------------------------------------------------------------
// Postings: what a segment stores and search reads

/**
 * BM25 postings in compressed-sparse-row form, terms in code point order. `weights` are what wink's
 * `consolidate()` stores (idf × tf part, rounded to 6 decimals), so a query's score is the sum of its
 * terms' weights; `tfs` and `lengths` let compaction recompute the weights of a merged segment (new N,
 * new average length, new document frequencies) without analysing any text again.
 */
export interface Bm25Postings {
  params: Bm25Params;
  terms: string[];
  /** The postings of term t are slots [start[t], start[t+1]); df(t) = start[t+1] − start[t]. */
  start: Uint32Array;
  /** Document ordinal per slot, ascending within a term. */
  docs: Uint32Array;
  /**
   * Weight per slot in millionths: wink rounds weights to 6 decimals, so the integer keeps them exactly
   * (`micro / 1e6` is the very double wink holds; a float32 would break its ties).
   */
  weights: Uint32Array;
  /** Term frequency per slot (saturated at 65,535, where the tf part has long stopped changing). */
  tfs: Uint16Array;
  /** Document lengths in index terms. */
  lengths: Uint32Array;
  totalLength: number;
}

const MAX_TF = 0xffff;

/** The weight wink's `consolidate()` stores for a term in a document (same operations, same rounding). */
export function winkWeight(tf: number, length: number, avgLength: number, idf: number, params: Bm25Params): number {
  const { k1, b } = params;
  const norm = 1 - b + b * (length / avgLength);
  return Math.sign(tf) * Number((Math.abs((tf * (k1 + 1)) / (k1 * norm + tf)) * idf).toFixed(WINK_PRECISION));
}

/**
 * Indexes `texts` (document ordinal = position) with wink-bm25-text-search when it accepts the collection
 * (3 documents or more), else by the same formula directly, and returns its postings.
 */
export function buildBm25Postings(
  texts: readonly string[],
  options: Pick<Bm25BuildOptions, "params"> = {},
): Bm25Postings {
  const params: Bm25Params = { ...DEFAULT_BM25_PARAMS, ...options.params };
  const n = texts.length;
  const lengths = new Uint32Array(n);
  // Per document: [term, tf] pairs; terms by their index in `vocabulary`.
  const vocabulary = new Map<string, number>();
  const perDoc: { terms: Int32Array; tfs: Int32Array }[] = [];
  let winkDocs: Record<string, WinkDoc> | undefined;
  if (n >= WINK_MIN_DOCS) {
    const wink = createWinkBm25(params);
    // Ordinals as ids: integer-like keys keep wink's document table in ordinal order.
    texts.forEach((text, i) => {
      wink.addDoc({ [FIELD]: text }, String(i));
    });
    const tokens = wink.getTokens();
    const names: string[] = [];
    for (const [term, index] of Object.entries(tokens)) names[index] = term;
    winkDocs = wink.getDocs();
    for (let i = 0; i < n; i += 1) {
      const doc = winkDocs[String(i)] as WinkDoc;
      lengths[i] = doc.length;
      const keys = Object.keys(doc.freq);
      const terms = new Int32Array(keys.length);
      const tfs = new Int32Array(keys.length);
      keys.forEach((key, j) => {
        const name = names[Number(key)] as string;
        let t = vocabulary.get(name);
        if (t === undefined) {
          t = vocabulary.size;
          vocabulary.set(name, t);
        }
        terms[j] = t;
        tfs[j] = doc.freq[key] as number;
      });
      perDoc.push({ terms, tfs });
    }
    wink.consolidate(WINK_PRECISION);
  } else {
    texts.forEach((text, i) => {
      const counts = new Map<number, number>();
      for (const term of prepareText(text)) {
        let t = vocabulary.get(term);
        if (t === undefined) {
          t = vocabulary.size;
          vocabulary.set(term, t);
        }
        counts.set(t, (counts.get(t) ?? 0) + 1);
        lengths[i] = (lengths[i] as number) + 1;
      }
      perDoc.push({ terms: Int32Array.from(counts.keys()), tfs: Int32Array.from(counts.values()) });
    });
  }
  // Terms in code point order.
  const unsorted = [...vocabulary.keys()];
  const order = unsorted
    .map((_, i) => i)
    .sort((a, b) => compareCodePoints(unsorted[a] as string, unsorted[b] as string));
  const rank = new Int32Array(order.length);
  order.forEach((t, r) => {
    rank[t] = r;
  });
  const terms = order.map((t) => unsorted[t] as string);
  const start = new Uint32Array(terms.length + 1);
  for (const doc of perDoc) {
    for (const t of doc.terms) {
      const slot = (rank[t] as number) + 1;
      start[slot] = (start[slot] as number) + 1;
    }
  }
  for (let t = 0; t < terms.length; t += 1) start[t + 1] = (start[t + 1] as number) + (start[t] as number);
  const total = start[terms.length] as number;
  const docs = new Uint32Array(total);
  const weights = new Uint32Array(total);
  const tfs = new Uint16Array(total);
  const cursor = start.slice(0, terms.length);
  let totalLength = 0;
  for (let i = 0; i < n; i += 1) totalLength += lengths[i] as number;
  const avgLength = n > 0 ? totalLength / n : 0;
  const idf = terms.map((_, r) => bm25Idf(n, (start[r + 1] as number) - (start[r] as number), params.k));
  perDoc.forEach((doc, i) => {
    const consolidated = winkDocs?.[String(i)]?.freq;
    const keys = consolidated === undefined ? undefined : Object.keys(consolidated);
    for (let j = 0; j < doc.terms.length; j += 1) {
      const r = rank[doc.terms[j] as number] as number;
      const at = cursor[r] as number;
      const tf = doc.tfs[j] as number;
      docs[at] = i;
      tfs[at] = Math.min(tf, MAX_TF);
      weights[at] = toMicro(
        consolidated !== undefined
          ? (consolidated[(keys as string[])[j] as string] as number)
          : winkWeight(tf, lengths[i] as number, avgLength, idf[r] as number, params),
      );
      cursor[r] = at + 1;
    }
  });
  return { params, terms, start, docs, weights, tfs, lengths, totalLength };
}

/** Read access to a segment's stored postings, for merging. */
export interface PostingSource {
  termCount: number;
  /** Compares term t with `key` (UTF-8), in byte order. */
  compareTerm(t: number, key: Uint8Array): number;
  termBytes(t: number): Uint8Array;
  start: Uint32Array;
  docs: Uint32Array;
  tfs: Uint16Array;
  lengths: Uint32Array;
  /** Old document ordinal → new ordinal in the merged segment, or −1 when the document is dropped. */
  remap: Int32Array;
}

/**
 * The postings of several segments' surviving documents as one segment's (`n` documents): terms united,
 * postings re-numbered, weights recomputed with the merged statistics exactly as wink would compute them
 * on the merged documents' texts. Each source's remap must be increasing over the documents it keeps.
 */
export function mergeBm25Postings(
  sources: readonly PostingSource[],
  n: number,
  params: Bm25Params,
): Omit<Bm25Postings, "terms"> & { termBytes: Uint8Array[] } {
  const lengths = new Uint32Array(n);
  for (const source of sources) {
    source.remap.forEach((target, old) => {
      if (target >= 0) lengths[target] = source.lengths[old] as number;
    });
  }
  let totalLength = 0;
  for (let i = 0; i < n; i += 1) totalLength += lengths[i] as number;
  const avgLength = n > 0 ? totalLength / n : 0;
  let capacity = 0;
  for (const source of sources) capacity += source.docs.length;
  const docs = new Uint32Array(capacity);
  const tfs = new Uint16Array(capacity);
  const weights = new Uint32Array(capacity);
  const termBytes: Uint8Array[] = [];
  const starts: number[] = [0];
  const cursors = sources.map(() => 0);
  const lists: { source: PostingSource; at: number; end: number }[] = [];
  let written = 0;
  for (;;) {
    // The smallest next term among the sources.
    let smallest: Uint8Array | undefined;
    for (let s = 0; s < sources.length; s += 1) {
      const source = sources[s] as PostingSource;
      const t = cursors[s] as number;
      if (t >= source.termCount) continue;
      if (smallest === undefined || source.compareTerm(t, smallest) < 0) smallest = source.termBytes(t);
    }
    if (smallest === undefined) break;
    lists.length = 0;
    for (let s = 0; s < sources.length; s += 1) {
      const source = sources[s] as PostingSource;
      const t = cursors[s] as number;
      if (t < source.termCount && source.compareTerm(t, smallest) === 0) {
        lists.push({ source, at: source.start[t] as number, end: source.start[t + 1] as number });
        cursors[s] = t + 1;
      }
    }
    // k-way merge by new ordinal, skipping dropped documents.
    const first = written;
    for (;;) {
      let best = -1;
      let bestDoc = Number.POSITIVE_INFINITY;
      for (let l = 0; l < lists.length; l += 1) {
        const list = lists[l] as (typeof lists)[number];
        while (list.at < list.end && (list.source.remap[list.source.docs[list.at] as number] as number) < 0)
          list.at += 1;
        if (list.at >= list.end) continue;
        const target = list.source.remap[list.source.docs[list.at] as number] as number;
        if (target < bestDoc) {
          bestDoc = target;
          best = l;
        }
      }
      if (best < 0) break;
      const list = lists[best] as (typeof lists)[number];
      docs[written] = bestDoc;
      tfs[written] = list.source.tfs[list.at] as number;
      list.at += 1;
      written += 1;
    }
    if (written === first) continue;
    const idf = bm25Idf(n, written - first, params.k);
    for (let p = first; p < written; p += 1) {
      weights[p] = toMicro(winkWeight(tfs[p] as number, lengths[docs[p] as number] as number, avgLength, idf, params));
    }
    termBytes.push(smallest.slice());
    starts.push(written);
  }
  return {
    params,
    termBytes,
    start: Uint32Array.from(starts),
    docs: docs.slice(0, written),
    weights: weights.slice(0, written),
    tfs: tfs.slice(0, written),
    lengths,
    totalLength,
  };
}

/** A weight rounded to 6 decimals, in millionths. */
const toMicro = (weight: number) => Math.round(weight * 1e6);

/** One query term's postings in one segment, and the factor that turns its weights into collection-wide scores. */
export interface TermPostings {
  docs: Uint32Array;
  /** In millionths (see `Bm25Postings.weights`). */
  weights: Uint32Array;
  scale: number;
}

/**
 * The `k` best documents of a segment of `n` for the given terms' postings (a term given twice counts
 * twice, as in wink), best first; only documents allowed by `allow` when given.
 */
export function scoreBm25(
  n: number,
  postings: readonly TermPostings[],
  k: number,
  allow: Uint8Array | undefined,
  scratch: { scores: Float64Array; seen: Uint8Array },
): { ordinal: number; score: number }[] {
  if (k <= 0 || n === 0 || postings.length === 0) return [];
  const { scores, seen } = scratch;
  let postingCount = 0;
  for (const { docs } of postings) postingCount += docs.length;
  const touched = new Int32Array(Math.min(n, postingCount));
  let count = 0;
  for (const { docs, weights, scale } of postings) {
    for (let p = 0; p < docs.length; p += 1) {
      const d = docs[p] as number;
      if (allow !== undefined && allow[d] === 0) continue;
      if (seen[d] === 0) {
        seen[d] = 1;
        touched[count] = d;
        count += 1;
      }
      scores[d] = (scores[d] as number) + ((weights[p] as number) / 1e6) * scale;
    }
  }
  const top = new TopK(k);
  for (let i = 0; i < count; i += 1) {
    const d = touched[i] as number;
    top.push(d, scores[d] as number);
    scores[d] = 0;
    seen[d] = 0;
  }
  return top.sorted().map(({ index, score }) => ({ ordinal: index, score }));
}

// ---------------------------------------------------------------------------------------------
// The index

export interface Bm25Doc {
  id: string;
  text: string;
}

export interface Bm25Hit {
  id: string;
  score: number;
  /** Position of the document in `Bm25Index.ids`. */
  ordinal: number;
}

export interface Bm25SearchOptions {
  /**
   * idf per query term to use instead of this index's own (e.g. computed over every segment of a
   * collection with `bm25Idf`), so scores from several indexes are comparable.
   */
  idf?: ReadonlyMap<string, number>;
  /** Only documents whose ordinal has a non-zero entry are scored. */
  allow?: Uint8Array;
}

export interface Bm25BuildOptions {
  /** "auto" (default): wink when it accepts the collection, the exact scorer otherwise. */
  engine?: "auto" | "wink" | "exact";
  params?: Partial<Pick<Bm25Params, "k1" | "b">>;
}

/** Minimal typing of the wink-bm25-text-search engine. */
interface WinkEngine {
  defineConfig(config: {
    fldWeights: Record<string, number>;
    bm25Params?: Partial<Bm25Params>;
    ovFldNames?: string[];
  }): boolean;
  definePrepTasks(tasks: Array<(input: string) => string[]>, field?: string): number;
  addDoc(doc: Record<string, string>, id: string): number;
  consolidate(precision?: number): boolean;
  search(text: string, limit?: number): Array<[string, number]>;
  exportJSON(): string;
  importJSON(json: string): boolean;
  getDocs(): Record<string, WinkDoc>;
  getTokens(): Record<string, number>;
  getConfig(): WinkConfig;
  getTotalDocs(): number;
  getTotalCorpusLength(): number;
}

interface WinkDoc {
  freq: Record<string, number>;
  fieldValues: Record<string, unknown>;
  length: number;
}

interface WinkConfig {
  fldWeights: Record<string, number>;
  bm25Params: Bm25Params;
  ovFldNames: string[];
}

interface ExactModel {
  format: typeof EXACT_FORMAT;
  version: 1;
  params: Bm25Params;
  ids: string[];
  /** Per document: term → count. */
  tf: Record<string, number>[];
}

const FIELD = "body";

/** A wink engine configured with this module's analysis (the same pipeline at index and query time). */
export function createWinkBm25(params: Partial<Pick<Bm25Params, "k1" | "b">> = {}): WinkEngine {
  const engine = createWinkEngine();
  engine.defineConfig({
    fldWeights: { [FIELD]: 1 },
    bm25Params: { ...DEFAULT_BM25_PARAMS, ...params },
  });
  engine.definePrepTasks([prepareText]);
  return engine;
}

interface Postings {
  terms: string[];
  /** CSR: the postings of term t are [offsets[t], offsets[t+1]). */
  offsets: Int32Array;
  docs: Int32Array;
  /** idf(t) · tf part(t, d), as wink stores it. */
  weights: Float64Array;
}

/**
 * An immutable BM25 index. `build` it from documents or load it with `fromJSON`; both give the same
 * compact in-memory form, searched without any per-query parsing or allocation beyond the results.
 */
export class Bm25Index {
  readonly kind: "wink" | "exact";
  readonly params: Readonly<Bm25Params>;
  /** Document ids by ordinal. */
  readonly ids: readonly string[];
  private readonly lengths: Float64Array;
  private readonly totalLength: number;
  private readonly postings: Postings;
  private readonly termIndex: Map<string, number>;
  private readonly idf: Float64Array;
  private readonly exact: ExactModel | undefined;
  // Scratch space reused by search() (searches are synchronous, so never concurrent).
  private readonly scratchScores: Float64Array;
  private readonly scratchSeen: Uint8Array;

  private constructor(init: {
    kind: "wink" | "exact";
    params: Bm25Params;
    ids: string[];
    lengths: Float64Array;
    totalLength: number;
    postings: Postings;
    exact?: ExactModel;
  }) {
    this.kind = init.kind;
    this.params = Object.freeze({ ...init.params });
    this.ids = init.ids;
    this.lengths = init.lengths;
    this.totalLength = init.totalLength;
    this.postings = init.postings;
    this.exact = init.exact;
    this.termIndex = new Map(init.postings.terms.map((term, index) => [term, index]));
    const n = init.ids.length;
    const { offsets } = init.postings;
    this.idf = new Float64Array(init.postings.terms.length);
    for (let t = 0; t < this.idf.length; t += 1) {
      this.idf[t] = bm25Idf(n, (offsets[t + 1] as number) - (offsets[t] as number), init.params.k);
    }
    this.scratchScores = new Float64Array(n);
    this.scratchSeen = new Uint8Array(n);
  }

  /** Indexes `docs` (ids must be unique). */
  static build(docs: readonly Bm25Doc[], options: Bm25BuildOptions = {}): Bm25Index {
    const seen = new Set<string>();
    for (const doc of docs) {
      if (seen.has(doc.id)) throw new Error(`Bm25Index.build: duplicate document id ${JSON.stringify(doc.id)}`);
      seen.add(doc.id);
    }
    const engine = options.engine ?? "auto";
    if (engine === "wink" && docs.length < WINK_MIN_DOCS) {
      throw new Error(`Bm25Index.build: wink-bm25-text-search needs at least ${WINK_MIN_DOCS} documents`);
    }
    if (engine === "exact" || (engine === "auto" && docs.length < WINK_MIN_DOCS)) {
      const params = { ...DEFAULT_BM25_PARAMS, ...options.params };
      const tf = docs.map((doc) => {
        const counts: Record<string, number> = Object.create(null);
        for (const term of prepareText(doc.text)) counts[term] = (counts[term] ?? 0) + 1;
        return counts;
      });
      return Bm25Index.fromExact({ format: EXACT_FORMAT, version: 1, params, ids: docs.map((d) => d.id), tf });
    }
    const wink = createWinkBm25(options.params);
    for (const doc of docs) wink.addDoc({ [FIELD]: doc.text }, doc.id);
    wink.consolidate(WINK_PRECISION);
    return Bm25Index.fromWink(wink);
  }

  /** Loads what `toJSON()` produced (a wink-bm25-text-search export, or the small exact format). */
  static fromJSON(json: string): Bm25Index {
    if (json.trimStart().startsWith("[")) {
      const wink = createWinkEngine();
      wink.importJSON(json);
      return Bm25Index.fromWink(wink);
    }
    const model = JSON.parse(json) as ExactModel;
    if (model?.format !== EXACT_FORMAT || model.version !== 1 || !Array.isArray(model.ids)) {
      throw new Error("Bm25Index.fromJSON: not a BM25 model");
    }
    return Bm25Index.fromExact(model);
  }

  private static fromWink(wink: WinkEngine): Bm25Index {
    const docs = wink.getDocs();
    const tokens = wink.getTokens();
    const config = wink.getConfig();
    const ids = Object.keys(docs);
    if (ids.length !== wink.getTotalDocs()) throw new Error("Bm25Index: inconsistent wink model");
    const terms: string[] = [];
    for (const [term, index] of Object.entries(tokens)) terms[index] = term;
    // Postings in CSR form: count per term, prefix sums, then fill in document order.
    const lengths = new Float64Array(ids.length);
    const docTerms: Int32Array[] = [];
    const docWeights: Float64Array[] = [];
    const counts = new Int32Array(terms.length + 1);
    ids.forEach((id, ordinal) => {
      const doc = docs[id] as WinkDoc;
      lengths[ordinal] = doc.length;
      const keys = Object.keys(doc.freq);
      const termIds = new Int32Array(keys.length);
      const termWeights = new Float64Array(keys.length);
      keys.forEach((key, i) => {
        const t = Number(key);
        termIds[i] = t;
        termWeights[i] = doc.freq[key] as number;
        counts[t + 1] = (counts[t + 1] as number) + 1;
      });
      docTerms.push(termIds);
      docWeights.push(termWeights);
    });
    const offsets = new Int32Array(terms.length + 1);
    for (let t = 0; t < terms.length; t += 1) offsets[t + 1] = (offsets[t] as number) + (counts[t + 1] as number);
    const total = offsets[terms.length] as number;
    const postingDocs = new Int32Array(total);
    const weights = new Float64Array(total);
    const cursor = offsets.slice(0, terms.length);
    for (let ordinal = 0; ordinal < ids.length; ordinal += 1) {
      const termIds = docTerms[ordinal] as Int32Array;
      const termWeights = docWeights[ordinal] as Float64Array;
      for (let i = 0; i < termIds.length; i += 1) {
        const t = termIds[i] as number;
        const at = cursor[t] as number;
        postingDocs[at] = ordinal;
        weights[at] = termWeights[i] as number;
        cursor[t] = at + 1;
      }
    }
    return new Bm25Index({
      kind: "wink",
      params: { ...DEFAULT_BM25_PARAMS, ...config.bm25Params },
      ids,
      lengths,
      totalLength: wink.getTotalCorpusLength(),
      postings: { terms, offsets, docs: postingDocs, weights },
    });
  }

  private static fromExact(model: ExactModel): Bm25Index {
    const { ids, tf, params } = model;
    const n = ids.length;
    const lengths = new Float64Array(n);
    const termIds = new Map<string, number>();
    const terms: string[] = [];
    const perTerm: number[][] = [];
    tf.forEach((counts, ordinal) => {
      for (const term in counts) {
        lengths[ordinal] = (lengths[ordinal] as number) + (counts[term] as number);
        let t = termIds.get(term);
        if (t === undefined) {
          t = terms.length;
          termIds.set(term, t);
          terms.push(term);
          perTerm.push([]);
        }
        (perTerm[t] as number[]).push(ordinal);
      }
    });
    const totalLength = lengths.reduce((sum, length) => sum + length, 0);
    const avgLength = n > 0 ? totalLength / n : 0;
    const offsets = new Int32Array(terms.length + 1);
    perTerm.forEach((list, t) => {
      offsets[t + 1] = (offsets[t] as number) + list.length;
    });
    const total = offsets[terms.length] as number;
    const postingDocs = new Int32Array(total);
    const weights = new Float64Array(total);
    let at = 0;
    perTerm.forEach((list, t) => {
      const idf = bm25Idf(n, list.length, params.k);
      const term = terms[t] as string;
      for (const ordinal of list) {
        const freq = (tf[ordinal] as Record<string, number>)[term] as number;
        const norm = 1 - params.b + (params.b * (lengths[ordinal] as number)) / avgLength;
        postingDocs[at] = ordinal;
        weights[at] = ((freq * (params.k1 + 1)) / (params.k1 * norm + freq)) * idf;
        at += 1;
      }
    });
    return new Bm25Index({
      kind: "exact",
      params,
      ids,
      lengths,
      totalLength,
      postings: { terms, offsets, docs: postingDocs, weights },
      exact: model,
    });
  }

  /** Number of documents. */
  get size(): number {
    return this.ids.length;
  }

  /** Number of documents containing `term` (an index term, i.e. from `prepareText`). */
  documentFrequency(term: string): number {
    const t = this.termIndex.get(term);
    if (t === undefined) return 0;
    return (this.postings.offsets[t + 1] as number) - (this.postings.offsets[t] as number);
  }

  /**
   * The `k` best documents for `query` (text, or terms already prepared with `prepareText`), best first.
   * A query with no index terms (e.g. only stop words) returns [].
   */
  search(query: string | readonly string[], k: number, options: Bm25SearchOptions = {}): Bm25Hit[] {
    const terms = typeof query === "string" ? prepareText(query) : query;
    if (k <= 0 || terms.length === 0 || this.ids.length === 0) return [];
    const { offsets, docs, weights } = this.postings;
    const scores = this.scratchScores;
    const seen = this.scratchSeen;
    const allow = options.allow;
    const touched: number[] = [];
    for (const term of terms) {
      const t = this.termIndex.get(term);
      if (t === undefined) continue;
      const localIdf = this.idf[t] as number;
      const idf = options.idf?.get(term);
      const scale = idf === undefined || localIdf === 0 ? 1 : idf / localIdf;
      const end = offsets[t + 1] as number;
      for (let p = offsets[t] as number; p < end; p += 1) {
        const d = docs[p] as number;
        if (allow !== undefined && allow[d] === 0) continue;
        if (seen[d] === 0) {
          seen[d] = 1;
          touched.push(d);
        }
        scores[d] = (scores[d] as number) + (weights[p] as number) * scale;
      }
    }
    const best = selectTopK(touched, (d) => scores[d] as number, k);
    const hits = best.map((ordinal) => ({
      id: this.ids[ordinal] as string,
      score: scores[ordinal] as number,
      ordinal,
    }));
    for (const d of touched) {
      scores[d] = 0;
      seen[d] = 0;
    }
    return hits;
  }

  /**
   * The serialized model: for the wink kind, a wink-bm25-text-search export (loadable by its
   * `importJSON`); for the exact kind, `{"format":"datadistiller-bm25-exact",...}`. Regenerated from the
   * compact form, so a loaded index does not keep its source text in memory.
   */
  toJSON(): string {
    if (this.exact !== undefined) return JSON.stringify(this.exact);
    // Written by hand: building the nested objects for JSON.stringify costs several times more.
    const { terms, offsets, docs: postingDocs, weights } = this.postings;
    const n = this.ids.length;
    const quotedIds = this.ids.map((id) => JSON.stringify(id));
    const freqParts: string[][] = quotedIds.map(() => []);
    const inverted: string[] = [];
    for (let t = 0; t < terms.length; t += 1) {
      const list: string[] = [];
      for (let p = offsets[t] as number; p < (offsets[t + 1] as number); p += 1) {
        const d = postingDocs[p] as number;
        (freqParts[d] as string[]).push(`"${t}":${weights[p]}`);
        list.push(quotedIds[d] as string);
      }
      inverted.push(`[${list.join(",")}]`);
    }
    const documents: string[] = [];
    for (let d = 0; d < n; d += 1) {
      const length = this.lengths[d] as number;
      documents.push(
        `${quotedIds[d]}:{"freq":{${(freqParts[d] as string[]).join(",")}},"fieldValues":{},"length":${length}}`,
      );
    }
    const config: WinkConfig = { fldWeights: { [FIELD]: 1 }, bm25Params: { ...this.params }, ovFldNames: [] };
    const docStats = { totalCorpusLength: this.totalLength, totalDocs: n, consolidated: true };
    const token2Index = `{${terms.map((term, t) => `${JSON.stringify(term)}:${t}`).join(",")}}`;
    return `[${JSON.stringify(config)},${JSON.stringify(docStats)},{${documents.join(",")}},[${inverted.join(",")}],${terms.length},${token2Index},{},[],[]]`;
  }
}
