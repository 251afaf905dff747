// 256 MiB generated on the fly, uploaded through GlanceHttpClient and downloaded back. The bytes
// must hash right end to end, and memory must not grow with the image (nothing buffered whole).
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GlanceHttpClient } from '../../../src/images/client';
import { hashStream, startFixture, type ImageServerFixture } from './image-server-fixture';

const CHUNK = 1024 * 1024;
const TOTAL_CHUNKS = 256;

let fx: ImageServerFixture;
afterAll(async () => fx?.cleanup());

/** Deterministic-enough unique chunks: a random block stamped with its index, hashed as generated. */
function generated(md5: ReturnType<typeof createHash>, sha512: ReturnType<typeof createHash>): Readable {
  const block = randomBytes(CHUNK);
  return Readable.from(
    (function* () {
      for (let i = 0; i < TOTAL_CHUNKS; i += 1) {
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(i, 0);
        md5.update(chunk);
        sha512.update(chunk);
        yield chunk;
      }
    })(),
    { objectMode: false, highWaterMark: CHUNK },
  );
}

it('streams a 256 MiB image up and down in constant memory with correct checksums', async () => {
  fx = await startFixture({ maxImageBytes: 1024 ** 3 });
  const client = new GlanceHttpClient(fx.server.url);
  const image = await client.create({ name: 'big', container_format: 'bare', disk_format: 'raw' });

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    let lastProgress = 0;
    await client.upload(image.id, generated(md5, sha512), { onProgress: (n) => (lastProgress = n) });
    const expected = { size: CHUNK * TOTAL_CHUNKS, md5: md5.digest('hex'), sha512: sha512.digest('hex') };
    expect(lastProgress).toBe(expected.size);

    const stored = await client.get(image.id);
    expect(stored).toMatchObject({ status: 'active', size: expected.size, checksum: expected.md5, os_hash_algo: 'sha512', os_hash_value: expected.sha512 });
    expect(await hashStream(await client.download(image.id))).toEqual(expected);
  } finally {
    clearInterval(sampler);
  }
  // Buffering the image anywhere (client, server, download) would add at least 256 MiB.
  expect(peak - baseline).toBeLessThan(128 * 1024 * 1024);
});
