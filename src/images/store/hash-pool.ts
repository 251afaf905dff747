// md5 and sha512 of uploads as they arrive, computed off the event loop: two worker threads, one
// per algorithm, each keeping the running state of every open stream. Hashing an image costs more
// CPU than receiving and writing it; on the event loop it would stall every other upload and
// request of the service. Chunks are copied to the workers; a stream waits when more than
// MAX_UNACKED bytes are still to be hashed, so memory stays bounded whatever the sender's pace.
// A thread that dies (exit, uncaught error) fails the streams it held with a retryable error and is
// replaced for every stream opened after; a stream that failed says so (`failed`), so its owner can
// rebuild its digests from what it stored.
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { ImageServiceUnavailable } from '../client/image-errors';

const MAX_UNACKED = 32 * 1024 * 1024;

// Plain CommonJS for `eval: true`: the workers need no loader, whatever runs the service.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const states = new Map();
const stateOf = (id) => { let h = states.get(id); if (!h) { h = createHash(workerData.algorithm); states.set(id, h); } return h; };
parentPort.on('message', (m) => {
  if (m.op === 'update') { stateOf(m.id).update(m.chunk); parentPort.postMessage({ op: 'ack', id: m.id, bytes: m.chunk.length }); }
  else if (m.op === 'digest') parentPort.postMessage({ op: 'digest', id: m.id, digest: stateOf(m.id).copy().digest('hex') });
  else if (m.op === 'close') states.delete(m.id);
});
`;

const ReplySchema = z.union([
  z.object({ op: z.literal('ack'), id: z.number().int(), bytes: z.number().int().nonnegative() }),
  z.object({ op: z.literal('digest'), id: z.number().int(), digest: z.string().regex(/^[0-9a-f]+$/) }),
]);

type Algorithm = 'md5' | 'sha512';

interface DigestWaiter {
  resolve: (hex: string) => void;
  reject: (err: Error) => void;
}

class HashThread {
  readonly worker: Worker;
  private readonly streams = new Map<number, { unacked: number; drained: (() => void)[]; digests: DigestWaiter[] }>();
  private failure: Error | null = null;

  constructor(private readonly algorithm: Algorithm) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithm } });
    this.worker.unref();
    this.worker.on('message', (raw: unknown) => this.onReply(raw));
    this.worker.on('error', (err) => this.fail(`failed: ${err.message}`));
    this.worker.on('exit', (code) => this.fail(`exited with code ${code}`));
  }

  /** The thread died (or was stopped): its streams fail, and no new stream may use it. */
  get dead(): boolean {
    return this.failure !== null;
  }

  open(id: number): void {
    this.streams.set(id, { unacked: 0, drained: [], digests: [] });
  }

  async update(id: number, chunk: Uint8Array): Promise<void> {
    const stream = this.stream(id);
    // A copy of its own for the worker: the caller goes on using (and reusing) its buffer.
    const copy = new Uint8Array(chunk);
    stream.unacked += copy.length;
    this.worker.postMessage({ op: 'update', id, chunk: copy }, [copy.buffer]);
    if (stream.unacked > MAX_UNACKED) await new Promise<void>((resolve) => stream.drained.push(resolve));
    this.check();
  }

  digest(id: number): Promise<string> {
    const stream = this.stream(id);
    return new Promise((resolve, reject) => {
      stream.digests.push({ resolve, reject });
      this.worker.postMessage({ op: 'digest', id });
    });
  }

  close(id: number): void {
    if (!this.streams.delete(id)) return;
    if (this.failure === null) this.worker.postMessage({ op: 'close', id });
  }

  async stop(): Promise<void> {
    this.failure ??= new ImageServiceUnavailable('The image service is stopping; retry the upload');
    await this.worker.terminate();
  }

  private stream(id: number) {
    this.check();
    const stream = this.streams.get(id);
    if (stream === undefined) throw new Error(`hash stream ${id} is not open`);
    return stream;
  }

  private onReply(raw: unknown): void {
    const reply = ReplySchema.safeParse(raw);
    if (!reply.success) {
      this.fail('sent an unexpected reply');
      void this.worker.terminate();
      return;
    }
    const stream = this.streams.get(reply.data.id);
    if (stream === undefined) return;
    if (reply.data.op === 'digest') {
      stream.digests.shift()?.resolve(reply.data.digest);
      return;
    }
    stream.unacked -= reply.data.bytes;
    if (stream.unacked <= MAX_UNACKED) for (const resolve of stream.drained.splice(0)) resolve();
  }

  private fail(why: string): void {
    this.failure ??= new ImageServiceUnavailable(`The ${this.algorithm} hash thread ${why}; the upload's digests are lost, retry it`);
    const failure = this.failure;
    // Waiters are released; their next call sees the failure. A digest still owed never comes.
    for (const stream of this.streams.values()) {
      for (const resolve of stream.drained.splice(0)) resolve();
      for (const waiter of stream.digests.splice(0)) waiter.reject(failure);
    }
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
  }
}

/** The running md5 and sha512 of one byte stream. */
export interface StreamHashes {
  update(chunk: Uint8Array): Promise<void>;
  /** the digests of everything updated so far; the stream can go on after */
  digests(): Promise<{ md5: string; sha512: string }>;
  /** A thread of this stream died: its state is lost, every further call fails. */
  readonly failed: boolean;
  close(): void;
}

export class HashPool {
  private threads: { md5: HashThread; sha512: HashThread } | null = null;
  private nextId = 1;

  open(): StreamHashes {
    // Started with the first stream (a service that never stages an upload runs no threads), and
    // again for a thread that died, so one crash does not fail every later upload.
    const md5 = this.thread('md5');
    const sha512 = this.thread('sha512');
    const id = this.nextId++;
    md5.open(id);
    sha512.open(id);
    let closed = false;
    return {
      update: async (chunk) => {
        await Promise.all([md5.update(id, chunk), sha512.update(id, chunk)]);
      },
      digests: async () => {
        const [md5Hex, sha512Hex] = await Promise.all([md5.digest(id), sha512.digest(id)]);
        return { md5: md5Hex, sha512: sha512Hex };
      },
      get failed() {
        return md5.dead || sha512.dead;
      },
      close: () => {
        if (closed) return;
        closed = true;
        md5.close(id);
        sha512.close(id);
      },
    };
  }

  /** Test hook: the threads now serving new streams, so a test can kill one for real. */
  runningWorkers(): Worker[] {
    return this.threads === null ? [] : [this.threads.md5.worker, this.threads.sha512.worker];
  }

  async stop(): Promise<void> {
    const threads = this.threads;
    this.threads = null;
    if (threads !== null) await Promise.all([threads.md5.stop(), threads.sha512.stop()]);
  }

  private thread(algorithm: Algorithm): HashThread {
    const threads = (this.threads ??= { md5: new HashThread('md5'), sha512: new HashThread('sha512') });
    if (threads[algorithm].dead) threads[algorithm] = new HashThread(algorithm);
    return threads[algorithm];
  }
}
