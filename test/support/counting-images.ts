// What the host sends as image data, measured: the workers' image client with its plain uploads
// counted (a real Glance takes the one-pass stream as one PUT). The client's other calls, the
// location API among them, are the client's own.
import { Readable } from 'node:stream';
import type { GlanceHttpClient, ImageClient } from '../../src/images/client';

export function countingUploads(images: GlanceHttpClient): { images: GlanceHttpClient; sent: () => number } {
  let sent = 0;
  async function* counted(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      sent += chunk.length;
      yield chunk;
    }
  }
  const upload: ImageClient['upload'] = (id, source, options) => {
    if (typeof source === 'string') throw new Error('countingUploads counts streamed uploads, not files');
    return images.upload(id, Readable.from(counted(source)), options);
  };
  return { images: Object.assign(Object.create(images) as GlanceHttpClient, { upload }), sent: () => sent };
}
