// md5 and sha512 of uploads as they arrive, computed off the event loop: two worker threads, one
// per algorithm, each keeping the running state of every open stream. Hashing an image costs more
// CPU than receiving and writing it; on the event loop it would stall every other upload and
// request of the service. Chunks are copied to the workers; a stream waits when more than
// MAX_UNACKED bytes are still to be hashed, so memory stays bounded whatever the sender's pace.
import { Worker } from 'node:worker_threads';
import { z } from 'zod';

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

class HashThread {
  private readonly worker: Worker;
  private readonly streams = new Map<number, { unacked: number; drained: (() => void)[]; digests: ((hex: string) => void)[] }>();
  private failure: Error | null = null;

  constructor(algorithm: Algorithm) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithm } });
    this.worker.unref();
    this.worker.on('message', (raw: unknown) => this.onReply(raw));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`${algorithm} hash thread exited with code ${code}`)));
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
    return new Promise((resolve) => {
      stream.digests.push(resolve);
      this.worker.postMessage({ op: 'digest', id });
    });
  }

  close(id: number): void {
    if (!this.streams.delete(id)) return;
    if (this.failure === null) this.worker.postMessage({ op: 'close', id });
  }

  async stop(): Promise<void> {
    this.failure ??= new Error('the hash threads were stopped');
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
    if (!reply.success) return this.fail(new Error('a hash thread sent an unexpected reply'));
    const stream = this.streams.get(reply.data.id);
    if (stream === undefined) return;
    if (reply.data.op === 'digest') {
      stream.digests.shift()?.(reply.data.digest);
      return;
    }
    stream.unacked -= reply.data.bytes;
    if (stream.unacked <= MAX_UNACKED) for (const resolve of stream.drained.splice(0)) resolve();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    // Waiters are released; their next call sees the failure.
    for (const stream of this.streams.values()) for (const resolve of stream.drained.splice(0)) resolve();
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
  close(): void;
}

export class HashPool {
  private threads: { md5: HashThread; sha512: HashThread } | null = null;
  private nextId = 1;

  open(): StreamHashes {
    // Started with the first stream: a service that never stages an upload runs no threads.
    this.threads ??= { md5: new HashThread('md5'), sha512: new HashThread('sha512') };
    const { md5, sha512 } = this.threads;
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
      close: () => {
        if (closed) return;
        closed = true;
        md5.close(id);
        sha512.close(id);
      },
    };
  }

  async stop(): Promise<void> {
    const threads = this.threads;
    this.threads = null;
    if (threads !== null) await Promise.all([threads.md5.stop(), threads.sha512.stop()]);
  }
}
