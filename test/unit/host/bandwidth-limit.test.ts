// The host's stream bandwidth limit on a fake clock: the rate holds for one taker and for two
// sharing it, waiters are served in order, an aborted waiter leaves without holding up the rest,
// unlimited never waits, bad numbers are refused; and once on the real clock, a lower bound only.
import { BandwidthLimit, InvalidBandwidthLimit } from '../../../src/host/bandwidth-limit';

const MiB = 1024 * 1024;

/** A clock that moves only when the test says so; sleeps wake as it passes their deadline. */
class FakeClock {
  ms = 0;
  private sleepers: { at: number; wake: () => void }[] = [];

  readonly now = (): number => this.ms;

  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      const sleeper = { at: this.ms + ms, wake: resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(new Error('sleep aborted'));
      });
    });

  /** Moves to each sleeper's deadline in turn (letting woken code run) until `ms` later. */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    for (;;) {
      await flush();
      const next = this.sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      this.ms = Math.max(this.ms, next.at);
      this.sleepers = this.sleepers.filter((s) => s !== next);
      next.wake();
    }
    this.ms = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Takes `chunks` chunks back to back, recording the fake time at which each was granted. */
async function taker(limit: BandwidthLimit, clock: FakeClock, chunk: number, chunks: number, granted: number[]): Promise<void> {
  for (let i = 0; i < chunks; i++) {
    await limit.take(chunk);
    granted.push(clock.ms);
  }
}

/** The most bytes granted within any window of `windowMs` (grants are instants). */
function maxInWindow(grants: number[], chunk: number, windowMs: number): number {
  let max = 0;
  for (const start of grants) max = Math.max(max, grants.filter((t) => t >= start && t < start + windowMs).length * chunk);
  return max;
}

describe('BandwidthLimit on a fake clock', () => {
  it('one taker: 2 MiB chunks at 4 MiB/s take their time, and no 2 s window carries more than rate·2 s + one chunk', async () => {
    const clock = new FakeClock();
    const limit = new BandwidthLimit(4 * MiB, { now: clock.now, sleep: clock.sleep });
    expect(limit.burstBytes).toBe(MiB);
    const granted: number[] = [];
    const done = taker(limit, clock, 2 * MiB, 20, granted);
    await clock.advance(20_000);
    await done;
    expect(granted).toHaveLength(20);
    // 40 MiB granted: 1 MiB from the full bucket, 1 MiB of debt the last chunk leaves, 38 MiB at 4 MiB/s.
    expect(granted.at(-1)).toBeGreaterThanOrEqual(9_500);
    expect(granted.at(-1)).toBeLessThanOrEqual(9_550);
    expect(maxInWindow(granted, 2 * MiB, 2_000)).toBeLessThanOrEqual(8 * MiB + 2 * MiB);
    // The long-run average is the rate.
    const bytesAfterFirst = 19 * 2 * MiB;
    expect(bytesAfterFirst / (((granted.at(-1) as number) - (granted[0] as number)) / 1000)).toBeLessThanOrEqual(4 * MiB * 1.001);
  });

  it('two concurrent takers share the one rate: together they stay under it, each getting about half', async () => {
    const clock = new FakeClock();
    const limit = new BandwidthLimit(4 * MiB, { now: clock.now, sleep: clock.sleep });
    const a: number[] = [];
    const b: number[] = [];
    const done = Promise.all([taker(limit, clock, MiB, 20, a), taker(limit, clock, MiB, 20, b)]);
    await clock.advance(20_000);
    await done;
    const all = [...a, ...b].sort((x, y) => x - y);
    // 40 MiB in all, 1 MiB of it from the bucket: the last grant waits for the other 39 at 4 MiB/s.
    expect(all.at(-1)).toBeGreaterThanOrEqual(9_750);
    expect(maxInWindow(all, MiB, 2_000)).toBeLessThanOrEqual(8 * MiB + MiB);
    // FIFO: neither finishes far ahead of the other.
    expect(Math.abs((a.at(-1) as number) - (b.at(-1) as number))).toBeLessThanOrEqual(500);
  });

  it('serves waiters first come, first served: a small take does not overtake a large one', async () => {
    const clock = new FakeClock();
    const limit = new BandwidthLimit(MiB, { now: clock.now, sleep: clock.sleep, burstBytes: MiB });
    await limit.take(MiB);
    const order: string[] = [];
    const big = limit.take(MiB).then(() => order.push('big'));
    const small = limit.take(1024).then(() => order.push('small'));
    await clock.advance(999);
    expect(order).toEqual([]);
    await clock.advance(1);
    await big;
    // The small one, behind it, waits for its own tokens after the big one's.
    expect(order).toEqual(['big']);
    await clock.advance(1);
    await small;
    expect(order).toEqual(['big', 'small']);
  });

  it('an aborted waiter is rejected with the reason and its place goes to the next one', async () => {
    const clock = new FakeClock();
    const limit = new BandwidthLimit(MiB, { now: clock.now, sleep: clock.sleep, burstBytes: MiB });
    await limit.take(MiB);
    const controller = new AbortController();
    const first = limit.take(MiB, controller.signal);
    let secondAt: number | undefined;
    const second = limit.take(MiB / 4).then(() => (secondAt = clock.ms));
    await clock.advance(100);
    expect(limit.waiting).toBe(2);
    const reason = new Error('activity cancelled');
    controller.abort(reason);
    await expect(first).rejects.toBe(reason);
    expect(limit.waiting).toBe(1);
    // The second needed a quarter of a MiB: 250 ms after the bucket emptied, not the first's 1 s.
    await clock.advance(200);
    await second;
    expect(secondAt).toBe(250);
    // An already aborted signal never waits.
    await expect(limit.take(1, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('unlimited (0) never waits, and a take of 0 bytes passes at once', async () => {
    const sleep = jest.fn(() => Promise.resolve());
    const limit = new BandwidthLimit(0, { sleep });
    expect(limit.unlimited).toBe(true);
    for (let i = 0; i < 1000; i++) await limit.take(64 * MiB);
    expect(sleep).not.toHaveBeenCalled();
    const limited = new BandwidthLimit(MiB, { sleep });
    await limited.take(0);
    expect(sleep).not.toHaveBeenCalled();
  });

  it('refuses a negative, NaN or infinite rate, burst or byte count with a clear error', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new BandwidthLimit(bad)).toThrow(InvalidBandwidthLimit);
      expect(() => new BandwidthLimit(bad)).toThrow(/invalid bandwidth limit \(bytes per second\)/);
      expect(() => new BandwidthLimit(MiB, { burstBytes: bad })).toThrow(/invalid bandwidth burst/);
      expect(() => limitTake(bad)).toThrow(/invalid byte count/);
    }
    expect(() => new BandwidthLimit(MiB, { burstBytes: 0 })).toThrow(InvalidBandwidthLimit);
    expect(new InvalidBandwidthLimit('x').retryable).toBe(false);
  });
});

function limitTake(bytes: number): Promise<void> {
  return new BandwidthLimit(MiB).take(bytes);
}

it('on the real clock: 6 MiB through a 4 MiB/s limit take at least (6 MiB - burst) / rate', async () => {
  const limit = new BandwidthLimit(4 * MiB);
  const started = performance.now();
  for (let sent = 0; sent < 6 * MiB; sent += 256 * 1024) await limit.take(256 * 1024);
  const elapsed = performance.now() - started;
  // Lower bound only: a shared, noisy machine may take any longer.
  expect(elapsed).toBeGreaterThanOrEqual(((6 * MiB - limit.burstBytes) / (4 * MiB)) * 1000 - 5);
});
