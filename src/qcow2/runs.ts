// Sorted, disjoint, non-adjacent half-open runs [start, end) kept in typed arrays with prefix sums.
// One run per data extent at worst, never one entry per cluster: that is what keeps a 4 TiB plan at
// a few kilobytes. Units are whatever the caller chose (guest clusters, L1 indices, bytes).

export interface RunList {
  readonly count: number;
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  /** before[i]: total length of runs 0..i-1, so an ordinal maps to a run by binary search */
  readonly before: Float64Array;
  readonly total: number;
}

/** Accumulates runs in ascending order, merging a run that touches or overlaps the last one. */
export class RunListBuilder {
  private starts: Float64Array = new Float64Array(16);
  private ends: Float64Array = new Float64Array(16);
  private count = 0;

  add(start: number, end: number): void {
    if (end <= start) return;
    const last = this.count - 1;
    if (last >= 0 && start <= (this.ends[last] ?? 0)) {
      if (start < (this.starts[last] ?? 0)) throw new RangeError(`runs added out of order: ${start} after ${this.starts[last]}`);
      this.ends[last] = Math.max(this.ends[last] ?? 0, end);
      return;
    }
    if (this.count === this.starts.length) {
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
    }
    this.starts[this.count] = start;
    this.ends[this.count] = end;
    this.count += 1;
  }

  build(): RunList {
    const starts = this.starts.slice(0, this.count);
    const ends = this.ends.slice(0, this.count);
    const before = new Float64Array(this.count);
    let total = 0;
    for (let i = 0; i < this.count; i++) {
      before[i] = total;
      total += at(ends, i) - at(starts, i);
    }
    return { count: this.count, starts, ends, before, total };
  }
}

function grow(a: Float64Array): Float64Array {
  const bigger = new Float64Array(a.length * 2);
  bigger.set(a);
  return bigger;
}

/** Typed-array read that satisfies noUncheckedIndexedAccess; callers only pass in-range indices. */
export function at(a: Float64Array, i: number): number {
  return a[i] ?? 0;
}

/** Index of the first run whose end is greater than x (count if none): where a walk from x begins. */
export function firstRunEndingAfter(runs: RunList, x: number): number {
  let lo = 0;
  let hi = runs.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (at(runs.ends, mid) > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The run containing x, or -1. */
export function runContaining(runs: RunList, x: number): number {
  const i = firstRunEndingAfter(runs, x);
  return i < runs.count && at(runs.starts, i) <= x ? i : -1;
}

/** The position of x among all run members (0-based), or -1 when x is in no run. */
export function ordinalOf(runs: RunList, x: number): number {
  const i = runContaining(runs, x);
  return i < 0 ? -1 : at(runs.before, i) + (x - at(runs.starts, i));
}

/** The run holding the k-th member (0 <= k < total). */
export function runAtOrdinal(runs: RunList, k: number): number {
  let lo = 0;
  let hi = runs.count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (at(runs.before, mid) <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
