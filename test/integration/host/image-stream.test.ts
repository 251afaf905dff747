// The one-pass stream on its own: a qcow2 chain served by a read-only qemu-nbd, read through our
// NBD client, laid out by the streaming writer and sent to the real image service over HTTP. The
// image is identical to the disk (qemu-img compare, check), carries the disk's logical digest,
// resumes from the committed length after a broken stream, starts over for another export, falls
// back to a plain PUT where the extension is missing, and keeps to its bandwidth limit.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BandwidthLimit } from '../../../src/host/bandwidth-limit';
import { streamImage, type StreamImageOptions } from '../../../src/host/image-stream';
import { imagesIdentical } from '../../../src/host/qemu-img';
import { runTool, runToolOutput } from '../../../src/process/tool-process';
import { GlanceHttpClient, ImageGone, ImageNotFound, LOGICAL_DIGEST_PROPERTY, type Image, type ImageClient } from '../../../src/images/client';
import { LOGICAL_DIGEST_ALGORITHM, logicalDigestOf, type AllocationMap } from '../../../src/qcow2';
import { exportChain, type ExportedChain } from '../../support/exported-chain';
import { downloadImage } from '../../support/image-bytes';
import { startFixture, type ImageServerFixture } from '../images/image-server-fixture';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

let dir: string;
let overlay: string;
let fixture: ImageServerFixture;
let images: GlanceHttpClient;
let map: AllocationMap;
let diskDigest: string;
let chain: ExportedChain;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'image-stream-'));
  chain = await exportChain(dir, SIZE, 6);
  overlay = chain.overlay;
  map = chain.map;
  const raw = path.join(dir, 'flat.raw');
  await runTool('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', overlay, raw]);
  diskDigest = `${LOGICAL_DIGEST_ALGORITHM}:${await logicalDigestOf(createReadStream(raw), SIZE)}`;
  await rm(raw);
  fixture = await startFixture();
  // Protocol 1 (guest data staged): what this file tests. Named uploads: named-dedup.test.ts.
  images = Object.assign(Object.create(new GlanceHttpClient(fixture.server.url)) as GlanceHttpClient, { namesChunks: async () => false });
});

afterAll(async () => {
  await chain?.stop();
  await fixture?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function options(imageId: string, over: Partial<StreamImageOptions> = {}): StreamImageOptions {
  return { images, imageId, format: 'qcow2', exportName: 'vda', socketPath: chain.socketPath, map, exportId: 'export-a', ...over };
}

/** The committed length once the service has finished with the broken request (it answers busy meanwhile). */
async function committedAfterBreak(imageId: string): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const offset = (await images.stagedUpload(imageId))?.offset ?? 0;
    if (offset > 0 || Date.now() > deadline) return offset;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function expectIdentical(imageId: string): Promise<void> {
  const file = await downloadImage(images, imageId, dir);
  try {
    if ((await images.get(imageId)).disk_format === 'raw') {
      const r = await runToolOutput('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'qcow2', file, overlay], { okExitCodes: [0, 1] });
      expect(r.exitCode).toBe(0);
    } else {
      expect(await imagesIdentical(file, overlay)).toBe(true);
      await runTool('qemu-img', ['check', '-q', file]);
    }
  } finally {
    await rm(file, { force: true });
  }
  expect((await images.get(imageId)).properties[LOGICAL_DIGEST_PROPERTY] ?? diskDigest).toBe(diskDigest);
}

/** The client with appendStaged cut after `cutAfter` bytes of its body, `times` times. */
function cutting(cutAfter: number, times: number): ImageClient {
  let left = times;
  return Object.assign(Object.create(images) as ImageClient, {
    appendStaged: (id: string, offset: number, body: AsyncIterable<Buffer>, o?: Parameters<ImageClient['appendStaged']>[3]) => {
      if (left-- <= 0) return images.appendStaged(id, offset, body, o);
      async function* cut(): AsyncGenerator<Buffer> {
        let sent = 0;
        for await (const chunk of body) {
          if (sent + chunk.length > cutAfter) throw new Error('injected: the connection broke');
          sent += chunk.length;
          yield chunk;
        }
      }
      return images.appendStaged(id, offset, cut(), o);
    },
  });
}

describe('streamImage: export → logical upload, composed by the service (or the writer → one PUT)', () => {
  it.each(['qcow2', 'raw'] as const)('%s: one pass, the image identical to the disk, its digest the disk’s', async (format) => {
    const image = await images.create({ name: `stream-${format}`, disk_format: format, container_format: 'bare' });
    const out = await streamImage(options(image.id, { format }));
    expect(out).toMatchObject({ resumedFrom: 0, resumable: true, logicalDigest: diskDigest.split(':')[1] });
    expect(out.image).toMatchObject({ status: 'active', size: out.size });
    await expectIdentical(image.id);
  });

  it('a stream broken twice goes on from the committed length within the call', async () => {
    const image = await images.create({ name: 'stream-broken' });
    const out = await streamImage(options(image.id, { images: cutting(5 * MiB, 2), segmentBytes: 8 * MiB }));
    expect(out.image.status).toBe('active');
    await expectIdentical(image.id);
  });

  it('a new call (a new host worker) resumes the staged bytes of the same export', async () => {
    const image = await images.create({ name: 'stream-resumed' });
    await expect(streamImage(options(image.id, { images: cutting(12 * MiB, 10), segmentBytes: 64 * MiB, maxBreaks: 0 }))).rejects.toThrow(/connection broke|upload/);
    const staged = await committedAfterBreak(image.id);
    expect(staged).toBeGreaterThan(0);
    const out = await streamImage(options(image.id));
    expect(out.resumedFrom).toBe(staged);
    expect(out.bytesSent).toBe(out.changedBytes - out.resumedFrom);
    await expectIdentical(image.id);
  });

  it('staged bytes of another export are discarded: the stream starts over', async () => {
    const image = await images.create({ name: 'stream-other-export' });
    await expect(streamImage(options(image.id, { images: cutting(12 * MiB, 10), maxBreaks: 0 }))).rejects.toThrow();
    expect(await committedAfterBreak(image.id)).toBeGreaterThan(0);
    const out = await streamImage(options(image.id, { exportId: 'export-b' }));
    expect(out.resumedFrom).toBe(0);
    await expectIdentical(image.id);
  });

  it('a service without the extension gets one plain PUT from byte 0 and a whole image', async () => {
    const image = await images.create({ name: 'stream-plain' });
    const plain = Object.assign(Object.create(images) as ImageClient, { composes: async () => false });
    const out = await streamImage(options(image.id, { images: plain }));
    expect(out).toMatchObject({ resumable: false, resumedFrom: 0 });
    expect(out.image.status).toBe('active');
    await expectIdentical(image.id);
  });

  it('deletes a plainly uploaded image whose reported md5 is not that of the bytes sent', async () => {
    const image = await images.create({ name: 'stream-plain-mismatch' });
    const wrongChecksum = async (id: string): Promise<Image> => ({ ...(await images.get(id)), checksum: '0'.repeat(32) });
    const plain = Object.assign(Object.create(images) as ImageClient, { composes: async () => false, get: wrongChecksum });
    await expect(streamImage(options(image.id, { images: plain }))).rejects.toBeInstanceOf(ImageGone);
    await expect(images.get(image.id)).rejects.toBeInstanceOf(ImageNotFound);
  });

  it('keeps to the per-host bandwidth limit', async () => {
    const image = await images.create({ name: 'stream-limited' });
    const limit = new BandwidthLimit(16 * MiB);
    const started = Date.now();
    const out = await streamImage(options(image.id, { limit }));
    const elapsedS = (Date.now() - started) / 1000;
    // A lower bound only: the bucket may start full (its burst), never faster than the rate after.
    expect(elapsedS).toBeGreaterThanOrEqual((out.size - limit.burstBytes) / (16 * MiB));
    await expectIdentical(image.id);
  });
});
