/** Top-k selection shared by BM25 and the vector indexes. */

/**
 * The `k` best (index, score) pairs among those pushed; ties go to the smaller index, so results are
 * deterministic. A binary min-heap: a push that cannot enter costs one comparison, one that enters
 * O(log k) — so a scan can push every candidate without collecting them first.
 */
export class TopK {
  private readonly indexes: Int32Array;
  private readonly scores: Float64Array;
  private length = 0;

  constructor(readonly k: number) {
    const size = Math.max(0, Math.floor(k));
    this.indexes = new Int32Array(size);
    this.scores = new Float64Array(size);
  }

  /** The lowest score that still enters once the heap is full (-Infinity before). */
  get threshold(): number {
    return this.length < this.indexes.length ? Number.NEGATIVE_INFINITY : (this.scores[0] as number);
  }

  push(index: number, score: number): void {
    const { indexes, scores } = this;
    const size = indexes.length;
    if (this.length < size) {
      let i = this.length;
      this.length += 1;
      // Sift up (the root is the worst kept): a parent that ranks above the newcomer moves down.
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const ps = scores[parent] as number;
        if (!(score < ps || (score === ps && index > (indexes[parent] as number)))) break;
        indexes[i] = indexes[parent] as number;
        scores[i] = ps;
        i = parent;
      }
      indexes[i] = index;
      scores[i] = score;
      return;
    }
    if (size === 0) return;
    const rootScore = scores[0] as number;
    if (!(rootScore < score || (rootScore === score && (indexes[0] as number) > index))) return;
    // Replace the root (the worst kept) and sift down.
    let i = 0;
    const length = this.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= length) break;
      const right = left + 1;
      let worst = left;
      if (right < length) {
        const ls = scores[left] as number;
        const rs = scores[right] as number;
        if (rs < ls || (rs === ls && (indexes[right] as number) > (indexes[left] as number))) worst = right;
      }
      const ws = scores[worst] as number;
      if (!(ws < score || (ws === score && (indexes[worst] as number) > index))) break;
      indexes[i] = indexes[worst] as number;
      scores[i] = ws;
      i = worst;
    }
    indexes[i] = index;
    scores[i] = score;
  }

  /** The kept pairs, best first. */
  sorted(): { index: number; score: number }[] {
    const out: { index: number; score: number }[] = [];
    for (let slot = 0; slot < this.length; slot += 1) {
      out.push({ index: this.indexes[slot] as number, score: this.scores[slot] as number });
    }
    return out.sort((x, y) => y.score - x.score || x.index - y.index);
  }
}

/**
 * Indices of the `k` highest `scoreOf(i)` among `candidates`, best first; ties go to the smaller index,
 * so results are deterministic. O(n log k).
 */
export function selectTopK(candidates: ArrayLike<number>, scoreOf: (index: number) => number, k: number): number[] {
  const n = candidates.length;
  if (k <= 0 || n === 0) return [];
  const top = new TopK(Math.min(k, n));
  for (let c = 0; c < n; c += 1) {
    const index = candidates[c] as number;
    top.push(index, scoreOf(index));
  }
  return top.sorted().map((entry) => entry.index);
}
