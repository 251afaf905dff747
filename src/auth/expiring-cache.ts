// A bounded map whose entries expire: a full cache drops its least recently used entry, so what
// fills one cache can never push entries out of another.

export class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(private readonly maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`a cache holds at least one entry, not ${maxEntries}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The live value, or undefined (an expired entry goes). */
  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.until <= now) return undefined;
    // Re-inserted: Map order is the recency order the eviction follows.
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, until: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, until });
  }
}
