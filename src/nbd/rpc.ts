// One NBD connection in the transmission phase: several requests in flight, replies matched by
// cookie, a bound on requests and bytes in flight, and a watchdog that turns a silent server into a
// typed error. A broken peer fails the connection and every request on it; nothing awaits forever.
import type net from 'node:net';
import { NbdConnectionError, NbdError, NbdProtocolError, NbdTimeoutError } from './errors';
import { encodeRequest, ReplyDecoder, type ChunkHeader, type ReplySink } from './frame';
import { NBD_ESHUTDOWN, NBD_REPLY_FLAG_DONE, NbdCommand } from './protocol';
import type { ReplyAssembler } from './replies';
import { errorMessage } from '../contract';

export interface ConnectionLimits {
  /** Requests on the wire at once; more wait their turn. */
  maxInFlight: number;
  /** Read bytes on the wire at once (a single larger request still goes alone). */
  maxInFlightBytes: number;
  /** Longest silence from the server while requests are outstanding; 0 disables. */
  replyTimeoutMs: number;
}

interface Job {
  flags: number;
  assembler: ReplyAssembler<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class NbdConnection implements ReplySink {
  private readonly decoder = new ReplyDecoder(this);
  private readonly pending = new Map<number, Job>();
  private readonly queue: Job[] = [];
  private nextCookie = 0;
  private bytesInFlight = 0;
  private closedWith: Error | null = null;
  /** no new requests; disconnect once the outstanding ones are answered */
  private draining = false;
  private discSent = false;
  private readonly drained: Array<() => void> = [];
  private lastActivity = Date.now();
  private watchdog: NodeJS.Timeout | null = null;
  private readonly closeCallbacks: Array<(err: Error) => void> = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly structured: boolean,
    private readonly limits: ConnectionLimits,
    readonly peer: string,
    leftovers: Buffer[],
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new NbdConnectionError(`connection to ${peer} failed: ${err.message}`, { cause: err })));
    socket.on('close', () => {
      const why = this.pending.size > 0 || !this.decoder.atBoundary ? `closed by the server with ${this.pending.size} request(s) outstanding` : 'closed';
      this.fail(new NbdConnectionError(`connection to ${peer} ${why}`));
    });
    for (const chunk of leftovers) this.onData(chunk);
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Requests sent and not yet answered, plus those waiting for a slot. */
  get inFlight(): number {
    return this.pending.size + this.queue.length;
  }

  onClose(cb: (err: Error) => void): void {
    this.closeCallbacks.push(cb);
  }

  submit<T>(assembler: ReplyAssembler<T>, flags = 0): Promise<T> {
    if (this.closedWith) return Promise.reject(new NbdConnectionError(`connection to ${this.peer} is closed: ${this.closedWith.message}`, { cause: this.closedWith }));
    if (this.draining) return Promise.reject(new NbdConnectionError(`connection to ${this.peer} is closing`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ flags, assembler, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Soft disconnect: waits for outstanding requests, sends NBD_CMD_DISC, ends the socket. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closedWith) return;
    this.draining = true;
    const settled = new Promise<void>((resolve) => (this.pending.size + this.queue.length === 0 ? resolve() : this.drained.push(resolve)));
    if (!(await withTimeout(settled, timeoutMs))) {
      this.destroy(new NbdTimeoutError(`requests to ${this.peer} still outstanding ${timeoutMs} ms after close`, timeoutMs));
      return;
    }
    if (this.closedWith) return;
    this.disconnect();
    const gone = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    if (!(await withTimeout(gone, timeoutMs))) this.socket.destroy();
  }

  /** Hard disconnect: outstanding requests fail with `err`. */
  destroy(err: Error = new NbdConnectionError(`connection to ${this.peer} destroyed by the client`)): void {
    this.fail(err);
    this.socket.destroy();
  }

  // ---- ReplySink: the decoder asks before it buffers ----

  simpleReply(cookie: number, error: number): Buffer | null {
    return this.lookup(cookie).assembler.simpleReply(error, this.structured);
  }

  simpleReplyDone(cookie: number): void {
    this.complete(cookie, this.lookup(cookie));
  }

  chunkHeader(h: ChunkHeader): void {
    const job = this.lookup(h.cookie);
    if (!this.structured) throw new NbdProtocolError(`structured reply chunk from ${this.peer}, which refused structured replies`);
    job.assembler.checkChunkHeader(h);
  }

  chunkData(h: ChunkHeader, offset: number): Buffer {
    return this.lookup(h.cookie).assembler.dataDestination(h, offset);
  }

  chunk(h: ChunkHeader, payload: Buffer): void {
    const job = this.lookup(h.cookie);
    job.assembler.chunk(h, payload);
    if ((h.flags & NBD_REPLY_FLAG_DONE) !== 0) this.complete(h.cookie, job);
  }

  // ---- internals ----

  private lookup(cookie: number): Job {
    const job = this.pending.get(cookie);
    if (!job) throw new NbdProtocolError(`reply from ${this.peer} for cookie ${cookie}, which no outstanding request carries`);
    return job;
  }

  private complete(cookie: number, job: Job): void {
    this.pending.delete(cookie);
    this.bytesInFlight -= job.assembler.bytes;
    let result: unknown;
    try {
      result = job.assembler.finish();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      job.reject(err);
      // A breach poisons the connection (the decoder rethrows); a server-reported error does not.
      if (err instanceof NbdProtocolError) throw err;
      // The spec obliges a client that sees ESHUTDOWN to disconnect softly.
      if (err instanceof NbdError && err.code === NBD_ESHUTDOWN) this.draining = true;
      this.afterCompletion();
      return;
    }
    job.resolve(result);
    this.afterCompletion();
  }

  private afterCompletion(): void {
    this.pump();
    if (this.pending.size + this.queue.length > 0) return;
    this.stopWatchdog();
    for (const cb of this.drained.splice(0)) cb();
    if (this.draining && !this.closedWith) this.disconnect();
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.closedWith) {
      const job = this.queue[0] as Job;
      const bytes = job.assembler.bytes;
      if (this.pending.size >= this.limits.maxInFlight) return;
      if (this.pending.size > 0 && this.bytesInFlight + bytes > this.limits.maxInFlightBytes) return;
      this.queue.shift();
      this.send(job);
    }
  }

  private send(job: Job): void {
    const cookie = this.allocateCookie();
    if (this.pending.size === 0) this.lastActivity = Date.now();
    this.pending.set(cookie, job);
    this.bytesInFlight += job.assembler.bytes;
    const { command, offset, length } = job.assembler;
    this.socket.write(encodeRequest({ flags: job.flags, command, cookie, offset, length }));
    this.startWatchdog();
  }

  /** Cookies are opaque to the server; 32-bit ones, never reused while in flight, suffice. */
  private allocateCookie(): number {
    do this.nextCookie = (this.nextCookie + 1) >>> 0;
    while (this.nextCookie === 0 || this.pending.has(this.nextCookie));
    return this.nextCookie;
  }

  private disconnect(): void {
    if (this.discSent || this.socket.destroyed) return;
    // Nothing may follow NBD_CMD_DISC, so it is sent once and the write side ends with it.
    this.discSent = true;
    this.socket.write(encodeRequest({ flags: 0, command: NbdCommand.Disc, cookie: this.allocateCookie(), offset: 0, length: 0 }));
    this.socket.end();
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith) return;
    this.lastActivity = Date.now();
    try {
      this.decoder.push(chunk);
    } catch (e) {
      const err = e instanceof NbdProtocolError ? e : new NbdProtocolError(errorMessage(e));
      this.destroy(new NbdProtocolError(`malformed reply from ${this.peer}: ${err.message}`));
    }
  }

  private startWatchdog(): void {
    const timeout = this.limits.replyTimeoutMs;
    if (timeout <= 0 || this.watchdog) return;
    this.watchdog = setInterval(
      () => {
        const silentFor = Date.now() - this.lastActivity;
        if (this.pending.size > 0 && silentFor >= timeout) {
          this.destroy(new NbdTimeoutError(`no reply from ${this.peer} for ${silentFor} ms with ${this.pending.size} request(s) outstanding`, timeout));
        }
      },
      Math.max(10, Math.min(1_000, Math.floor(timeout / 4))),
    );
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private fail(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.stopWatchdog();
    const jobs = [...this.pending.values(), ...this.queue.splice(0)];
    this.pending.clear();
    for (const job of jobs) job.reject(err);
    for (const cb of this.drained.splice(0)) cb();
    for (const cb of this.closeCallbacks) cb(err);
  }
}

async function withTimeout(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
