// Bytes received but not yet parsed. Socket chunks arrive at arbitrary boundaries; the parsers take
// exact counts from the front. Taking from one chunk is a view, not a copy, so a large payload that
// streams into its destination is copied exactly once.

export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // consumed bytes of chunks[0]
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Removes and returns exactly n bytes; the caller checks `length` first. */
  take(n: number): Buffer {
    if (n > this.total) throw new RangeError(`take(${n}) with ${this.total} bytes queued`);
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    this.copyOut(out, 0, n);
    return out;
  }

  /** Moves up to n bytes into dest at destOffset; returns how many moved. */
  takeInto(dest: Buffer, destOffset: number, n: number): number {
    const count = Math.min(n, this.total);
    this.copyOut(dest, destOffset, count);
    return count;
  }

  /** Drops everything (a poisoned stream, or the handshake handing over leftovers). */
  drain(): Buffer[] {
    const rest = this.chunks.map((c, i) => (i === 0 ? c.subarray(this.head) : c));
    this.chunks = [];
    this.head = 0;
    this.total = 0;
    return rest.filter((c) => c.length > 0);
  }

  private copyOut(dest: Buffer, destOffset: number, n: number): void {
    let done = 0;
    while (done < n) {
      const first = this.chunks[0] as Buffer;
      const step = Math.min(n - done, first.length - this.head);
      first.copy(dest, destOffset + done, this.head, this.head + step);
      done += step;
      this.advance(step);
    }
  }

  private advance(n: number): void {
    this.head += n;
    this.total -= n;
    const first = this.chunks[0];
    if (first && this.head >= first.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
