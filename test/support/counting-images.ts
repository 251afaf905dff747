// The image client the host worker gets, counting the bytes it sends to the image store: the
// length of every staged segment (a resent one counts again) and every plain upload's bytes.
import { Readable } from 'node:stream';
import type { ImageClient } from '../../src/images/client';

export interface SentBytes {
  bytes: number;
}

async function* counted(source: AsyncIterable<Buffer>, sent: SentBytes): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    sent.bytes += chunk.length;
    yield chunk;
  }
}

export function countingImages(inner: ImageClient, sent: SentBytes): ImageClient {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'appendStaged') {
        return (...[id, offset, body, options]: Parameters<ImageClient['appendStaged']>) => {
          sent.bytes += options?.length ?? 0;
          return target.appendStaged(id, offset, body, options);
        };
      }
      if (prop === 'upload') {
        return (...[id, source, options]: Parameters<ImageClient['upload']>) =>
          typeof source === 'string' ? target.upload(id, source, options) : target.upload(id, Readable.from(counted(source, sent)), options);
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
