// A verify job's chunk checks, in a worker thread of their own: open, age, read, hash against the
// name, stamp, close, synchronously one chunk after the other. On the event loop the same work
// costs a round trip through libuv per file operation and stalls every request of the service for
// as long as the hashing takes; here a job runs at about the speed of one core's SHA-256 and the
// service keeps answering. The worker only reads and stamps: a damaged chunk is reported back, and
// the store quarantines it (chunk-store.ts).
import { Worker } from 'node:worker_threads';
import { z } from 'zod';

// Plain CommonJS for `eval: true`: the worker needs no loader, whatever runs the service (node, tsx, jest).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
function check(path, name, since) {
  let fd;
  try { fd = fs.openSync(path, 'r'); } catch (err) {
    if (err && err.code === 'ENOENT') return { outcome: 'missing' };
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.mtimeMs >= since) return { outcome: 'recent' };
    const buf = Buffer.allocUnsafe(st.size);
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, done);
      if (n === 0) break;
      done += n;
    }
    if (createHash('sha256').update(buf.subarray(0, done)).digest('hex') !== name) return { outcome: 'mismatch' };
    const now = new Date();
    fs.futimesSync(fd, now, now);
    return { outcome: 'verified', bytes: done };
  } finally {
    fs.closeSync(fd);
  }
}
parentPort.on('message', ({ chunks, since }) => {
  try {
    parentPort.postMessage({ results: chunks.map((c) => check(c.path, c.name, since)) });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

const OutcomeSchema = z.union([
  z.object({ outcome: z.enum(['missing', 'recent', 'mismatch']) }),
  z.object({ outcome: z.literal('verified'), bytes: z.number().int().nonnegative() }),
]);
export type ChunkCheck = z.infer<typeof OutcomeSchema>;
const ReplySchema = z.union([z.object({ results: z.array(OutcomeSchema) }), z.object({ error: z.string() })]);

export class ChunkChecker {
  private pending: { resolve: (r: ChunkCheck[]) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (raw: unknown) => {
      const reply = ReplySchema.safeParse(raw);
      const waiting = this.pending;
      this.pending = undefined;
      if (!reply.success) waiting?.reject(new Error('chunk check worker sent an unexpected reply'));
      else if ('error' in reply.data) waiting?.reject(new Error(`chunk check failed: ${reply.data.error}`));
      else waiting?.resolve(reply.data.results);
    });
    const fail = (err: Error): void => {
      this.failure = err;
      this.pending?.reject(err);
      this.pending = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`chunk check worker exited with code ${code}`)));
  }

  static start(): ChunkChecker {
    return new ChunkChecker(new Worker(WORKER_SOURCE, { eval: true }));
  }

  /** One batch at a time: each chunk `recent` (stamped at or after `verifiedSince`, ms), `verified` (and stamped now), `mismatch` or `missing`. */
  check(chunks: { path: string; name: string }[], verifiedSince: number): Promise<ChunkCheck[]> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pending !== undefined) return Promise.reject(new Error('a chunk check batch is already running'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ chunks, since: verifiedSince });
    });
  }

  async stop(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
