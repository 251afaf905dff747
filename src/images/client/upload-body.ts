// Request bodies of uploads (plain PUT and resumable PATCH): any byte source as one Readable that
// reports progress and, when a length is declared, fails rather than send more or fewer bytes
// than the Content-Length promised (fewer would leave the server waiting for the rest).
import { Readable, Transform } from 'node:stream';

/** A stream, or any async iterable of buffers such as an async generator. */
export type ByteSource = Readable | AsyncIterable<Buffer>;

export interface MeteredBody {
  body: Readable;
  /** Bytes handed to the network so far. */
  sent(): number;
  /** Stops reading the source (after a refusal or a failure). */
  destroy(): void;
}

export function meteredBody(source: ByteSource, options: { length?: number; onProgress?: (bytesSent: number) => void } = {}): MeteredBody {
  const input = isReadable(source) ? source : Readable.from(source, { objectMode: false });
  const { length, onProgress } = options;
  let done = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      if (length !== undefined && done > length) {
        callback(new Error(`source yields more than the declared ${length} bytes`));
        return;
      }
      onProgress?.(done);
      callback(null, chunk);
    },
    flush(callback) {
      callback(length !== undefined && done !== length ? new Error(`source ended after ${done} of the declared ${length} bytes`) : null);
    },
  });
  input.on('error', (err) => counter.destroy(err));
  return { body: input.pipe(counter), sent: () => done, destroy: () => input.destroy() };
}

// Duck-typed: a stream from another realm (vm contexts, jest) fails instanceof Readable.
function isReadable(source: ByteSource): source is Readable {
  return typeof (source as Partial<Readable>).pipe === 'function' && typeof (source as Partial<Readable>).destroy === 'function';
}
