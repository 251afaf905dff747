// What every long host activity needs: periodic heartbeats (so a dead worker is noticed within the
// heartbeat timeout and the step is retried on the host's queue) and the activity's cancellation
// signal for the tools it runs.
import { Context } from '@temporalio/activity';

/** Heartbeats every few seconds with the latest details until `work` settles. */
export async function withHeartbeat<T>(work: (report: (details: unknown) => void, signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  let details: unknown = undefined;
  ctx.heartbeat(details);
  const timer = setInterval(() => ctx.heartbeat(details), 5_000);
  try {
    return await work((d) => {
      details = d;
    }, ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/** A counting semaphore: per-host limits on concurrent extracts and uploads. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
