// A shared store's background mark and sweep (docs/object-store.md): one at a time, on a timer that
// never keeps the process up; a failure is logged and the next turn tries again; close() waits for
// the sweep in flight.
export class SharedStoreSweeps {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly sweep: () => Promise<unknown>,
    private readonly warn: (details: Record<string, unknown>, message: string) => void,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => void this.run(), intervalMs);
    this.timer.unref();
  }

  run(): Promise<unknown> {
    this.running ??= this.sweep()
      .catch((err: unknown) => this.warn({ err }, 'the shared store sweep failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
