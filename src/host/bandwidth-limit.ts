// The host's I/O bandwidth limit for snapshot streams (Proxmox's bwlimit): one token bucket per
// host worker, shared by every stream it runs, so that two snapshots at once together stay under
// the limit instead of each taking all of it. A stream calls take(n) before moving n bytes.
//
// The bucket holds at most `burstBytes` (default a quarter second's worth), so an idle limiter
// lets little through at once. A take larger than the bucket is not refused or split: it waits
// for a full bucket and then leaves the bucket in debt, which the following takes wait out. So in
// any window of T seconds at most rate·T + max(burst, largest take) bytes pass: with 2 MiB chunks
// at 4 MiB/s, no 2 s window carries more than 10 MiB, and the long-run average is the rate.
//
// Waiters are served first come, first served (a small take does not overtake a large one that
// waits, or the large one could starve), and an aborted waiter leaves the queue at once.
import { setTimeout as sleepFor } from 'node:timers/promises';
import { z } from 'zod';
import { issueText } from '../config/validation';

/** A rate, burst or byte count that is not a finite, non-negative number: the same call fails again. */
export class InvalidBandwidthLimit extends RangeError {
  override readonly name = 'InvalidBandwidthLimit';
  readonly retryable = false;
}

export interface BandwidthLimitOptions {
  /** milliseconds, monotonic enough for rate arithmetic (default performance.now) */
  now?: () => number;
  /** resolves after `ms`, rejects once `signal` aborts (default timers/promises setTimeout) */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** bucket size in bytes (default a quarter second at the rate) */
  burstBytes?: number;
}

const RateSchema = z.number({ invalid_type_error: 'a number of bytes per second' }).finite('a finite number of bytes per second').nonnegative('0 (unlimited) or more bytes per second');
const BurstSchema = z.number({ invalid_type_error: 'a number of bytes' }).finite('a finite number of bytes').positive('more than 0 bytes');
const TakeSchema = z.number({ invalid_type_error: 'a number of bytes' }).finite('a finite number of bytes').nonnegative('0 or more bytes');

function checked(schema: z.ZodNumber, value: unknown, what: string): number {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidBandwidthLimit(`invalid ${what} ${String(value)}: ${issueText(parsed.error)}`);
  return parsed.data;
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('bandwidth wait aborted');
}

export class BandwidthLimit {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** may go below zero: the debt of a take larger than the bucket */
  private tokens: number;
  private refilledAt: number;
  private readonly queue: Waiter[] = [];
  /** the one timer that wakes the queue's head; aborted when the head leaves the queue */
  private pumpSleep: AbortController | undefined;

  constructor(bytesPerSecond: number, opts: BandwidthLimitOptions = {}) {
    this.bytesPerSecond = checked(RateSchema, bytesPerSecond, 'bandwidth limit (bytes per second)');
    this.burstBytes = opts.burstBytes === undefined ? Math.max(1, this.bytesPerSecond / 4) : checked(BurstSchema, opts.burstBytes, 'bandwidth burst');
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.tokens = this.burstBytes;
    this.refilledAt = this.now();
  }

  get unlimited(): boolean {
    return this.bytesPerSecond === 0;
  }

  /** Takers waiting for their turn (for metrics and tests). */
  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves once `bytes` may be moved; rejects with the signal's reason when it aborts first. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const n = checked(TakeSchema, bytes, 'byte count');
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.unlimited || n === 0) return Promise.resolve();
    this.refill();
    if (this.queue.length === 0 && this.tokens >= this.need(n)) {
      this.tokens -= n;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes: n, resolve, reject, signal };
      if (signal !== undefined) {
        waiter.onAbort = () => this.leave(waiter, abortReason(signal));
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      if (this.queue.length === 1) this.schedule();
    });
  }

  /** A take up to the bucket's size waits for that many tokens; a larger one for a full bucket. */
  private need(bytes: number): number {
    return Math.min(bytes, this.burstBytes);
  }

  private refill(): void {
    const now = this.now();
    const elapsedMs = Math.max(0, now - this.refilledAt);
    this.refilledAt = now;
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsedMs * this.bytesPerSecond) / 1000);
  }

  private leave(waiter: Waiter, err: unknown): void {
    const at = this.queue.indexOf(waiter);
    if (at < 0) return;
    this.queue.splice(at, 1);
    waiter.reject(err);
    // The head left: the next one may need less, so its wake-up is computed afresh.
    if (at === 0) {
      this.pumpSleep?.abort();
      this.pumpSleep = undefined;
      this.serve();
    }
  }

  /** Lets through every waiter at the head that the bucket covers now, then sleeps for the next. */
  private serve(): void {
    this.refill();
    for (let head = this.queue[0]; head !== undefined && this.tokens >= this.need(head.bytes); head = this.queue[0]) {
      this.queue.shift();
      this.tokens -= head.bytes;
      if (head.onAbort !== undefined) head.signal?.removeEventListener('abort', head.onAbort);
      head.resolve();
    }
    if (this.queue.length > 0) this.schedule();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (head === undefined || this.pumpSleep !== undefined) return;
    this.refill();
    const missing = this.need(head.bytes) - this.tokens;
    // Rounded up, so the wake-up does not land a fraction of a millisecond early and sleep again.
    const waitMs = missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.bytesPerSecond);
    const timer = new AbortController();
    this.pumpSleep = timer;
    this.sleep(waitMs, timer.signal).then(
      () => {
        if (this.pumpSleep !== timer) return;
        this.pumpSleep = undefined;
        this.serve();
      },
      () => {
        // aborted by leave(), which has already rescheduled
      },
    );
  }
}
