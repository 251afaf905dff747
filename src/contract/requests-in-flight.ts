// Requests (to an object store, to the image service) that go on while their caller carries on, at
// most `limit` at once: each is a round trip, and one after another those round trips, not the
// bytes, bound a commit or a stream. The first failure is kept and thrown to the caller at its next start() or
// at drain(), so a caller never learns "all done" while one failed; nothing is started after a
// failure.

export class RequestsInFlight {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`requests in flight must be a whole number from 1, got ${limit}`);
  }

  /** Starts `request` once fewer than `limit` are running; throws the first failure of an earlier one instead. */
  async start(request: () => Promise<void>): Promise<void> {
    this.throwFailure();
    while (this.running.size >= this.limit) {
      await Promise.race(this.running);
      this.throwFailure();
    }
    const run: Promise<void> = request()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /**
   * One request per item, at most `limit` at once; resolves when all have ended. A failure stops
   * more from starting, and is thrown only once every request started has ended, so none of them
   * is still going beside whatever the caller does next (a retry, a clean-up).
   */
  async each<T>(items: Iterable<T>, request: (item: T) => Promise<void>): Promise<void> {
    try {
      for (const item of items) await this.start(() => request(item));
      await this.drain();
    } finally {
      await this.settle();
    }
  }

  /** Every request started has ended; throws the first failure among them. */
  async drain(): Promise<void> {
    await this.settle();
    this.throwFailure();
  }

  /** Every request started has ended, whatever their outcome (a caller that gives up waits for what it started). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private throwFailure(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
