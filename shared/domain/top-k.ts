/** Top-k selection shared by BM25 and the vector index. */

/**
 * Indices of the `k` highest `scoreOf(i)` among `candidates`, best first; ties go to the smaller index,
 * so results are deterministic. O(n log k) with a binary min-heap.
 */
export function selectTopK(candidates: ArrayLike<number>, scoreOf: (index: number) => number, k: number): number[] {
  const n = candidates.length;
  if (k <= 0 || n === 0) return [];
  // `worse(a, b)`: a ranks below b.
  const worse = (a: number, b: number, sa: number, sb: number) => sa < sb || (sa === sb && a > b);
  const size = Math.min(k, n);
  const heap = new Int32Array(size);
  const heapScores = new Float64Array(size);
  let length = 0;
  const siftDown = (from: number) => {
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= length) return;
      const right = left + 1;
      let worst = left;
      if (
        right < length &&
        worse(heap[right] as number, heap[left] as number, heapScores[right] as number, heapScores[left] as number)
      )
        worst = right;
      if (!worse(heap[worst] as number, heap[i] as number, heapScores[worst] as number, heapScores[i] as number))
        return;
      swap(i, worst);
      i = worst;
    }
  };
  const swap = (a: number, b: number) => {
    const index = heap[a] as number;
    heap[a] = heap[b] as number;
    heap[b] = index;
    const score = heapScores[a] as number;
    heapScores[a] = heapScores[b] as number;
    heapScores[b] = score;
  };
  for (let c = 0; c < n; c += 1) {
    const index = candidates[c] as number;
    const score = scoreOf(index);
    if (length < size) {
      let i = length;
      heap[i] = index;
      heapScores[i] = score;
      length += 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i] as number, heap[parent] as number, heapScores[i] as number, heapScores[parent] as number))
          break;
        swap(i, parent);
        i = parent;
      }
    } else if (worse(heap[0] as number, index, heapScores[0] as number, score)) {
      heap[0] = index;
      heapScores[0] = score;
      siftDown(0);
    }
  }
  const slots = Array.from({ length }, (_, slot) => slot);
  slots.sort(
    (x, y) => (heapScores[y] as number) - (heapScores[x] as number) || (heap[x] as number) - (heap[y] as number),
  );
  const order = slots.map((slot) => heap[slot] as number);
  return order;
}
