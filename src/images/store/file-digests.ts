// md5 and sha512 of a stored file, each computed in its own worker thread reading the file (from
// the page cache, just written): verify-after-commit re-reads every image once, and on the event
// loop that re-read would stall every other upload and request of the service for its duration.
import { Worker } from 'node:worker_threads';
import { z } from 'zod';

// Plain CommonJS for `eval: true`: the worker needs no loader, whatever runs the service (node, tsx, jest).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createReadStream } = require('node:fs');
const hash = createHash(workerData.algorithm);
let size = 0;
createReadStream(workerData.path, { highWaterMark: 4 * 1024 * 1024 })
  .on('data', (chunk) => { size += chunk.length; hash.update(chunk); })
  .on('error', (err) => parentPort.postMessage({ error: String((err && err.message) || err) }))
  .on('end', () => parentPort.postMessage({ size, digest: hash.digest('hex') }));
`;

const ReplySchema = z.union([z.object({ size: z.number().int().nonnegative(), digest: z.string().regex(/^[0-9a-f]+$/) }), z.object({ error: z.string() })]);

function digestInWorker(path: string, algorithm: 'md5' | 'sha512'): Promise<{ size: number; digest: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, algorithm } });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.once('message', (raw: unknown) => {
      const reply = ReplySchema.safeParse(raw);
      settle(() => {
        if (!reply.success) reject(new Error(`digest worker sent an unexpected reply for ${path}`));
        else if ('error' in reply.data) reject(new Error(`could not read ${path} to hash it: ${reply.data.error}`));
        else resolve(reply.data);
      });
    });
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) => settle(() => reject(new Error(`digest worker for ${path} exited with code ${code}`))));
  });
}

export interface FileDigests {
  size: number;
  md5: string;
  sha512: string;
}

/** Both digests of the whole file, side by side off the event loop. */
export async function fileDigests(path: string): Promise<FileDigests> {
  const [md5, sha512] = await Promise.all([digestInWorker(path, 'md5'), digestInWorker(path, 'sha512')]);
  if (md5.size !== sha512.size) throw new Error(`${path} changed while it was hashed (${md5.size} and ${sha512.size} bytes read)`);
  return { size: md5.size, md5: md5.digest, sha512: sha512.digest };
}
