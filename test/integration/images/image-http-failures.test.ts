import { createHash } from 'node:crypto';
// Upload failures: client aborts, size cap, deletion mid-upload. In every case no image may end
// up active with partial data and no staged bytes may be left behind.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { GlanceHttpClient, ImageConflict, ImageUploadFailed } from '../../../src/images/client';
import { hashStream, listDir, startFixture, type ImageServerFixture } from './image-server-fixture';

let fx: ImageServerFixture;
let client: GlanceHttpClient;

afterEach(async () => fx.cleanup());

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A source that sends `bytes` and then stalls until the test decides what happens next. */
function stallingSource(bytes: number): PassThrough {
  const source = new PassThrough();
  source.write(randomBytes(bytes));
  return source;
}

describe('failed uploads', () => {
  beforeEach(async () => {
    fx = await startFixture({ maxImageBytes: 1024 * 1024 });
    client = new GlanceHttpClient(fx.server.url);
  });

  it('kills the image when the client aborts mid-upload and leaves no staged or published bytes', async () => {
    const image = await client.create({ name: 'aborted' });
    const controller = new AbortController();
    const upload = client.upload(image.id, stallingSource(200 * 1024), { signal: controller.signal });
    await waitFor(async () => (await client.get(image.id)).status === 'saving', 'saving');
    await waitFor(async () => (await listDir(join(fx.dir, 'staging'))).length === 1, 'a staged file');
    controller.abort();
    const err = await upload.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageUploadFailed);
    await waitFor(async () => (await client.get(image.id)).status === 'killed', 'killed');
    expect(await listDir(join(fx.dir, 'staging'))).toEqual([]);
    expect(await listDir(join(fx.dir, 'files'))).toEqual([]);
    expect(await client.list({ status: 'active' })).toEqual([]);
    expect((await hashStream(await client.download(image.id))).size).toBe(0);
    // A retried upload starts over: the killed image takes the complete bytes and becomes active.
    await client.upload(image.id, Readable.from([Buffer.from('retried bytes')]));
    const revived = await client.get(image.id);
    expect(revived).toMatchObject({ status: 'active', size: 13, checksum: createHash('md5').update('retried bytes').digest('hex') });
    // An active image's bytes are final.
    await expect(client.upload(image.id, Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(ImageConflict);
  });

  it('kills the image when the source stream errors', async () => {
    const image = await client.create({ name: 'source-error' });
    const source = stallingSource(10 * 1024);
    const upload = client.upload(image.id, source);
    await waitFor(async () => (await client.get(image.id)).status === 'saving', 'saving');
    source.destroy(new Error('disk read failed'));
    await expect(upload).rejects.toBeInstanceOf(ImageUploadFailed);
    await waitFor(async () => (await client.get(image.id)).status === 'killed', 'killed');
    expect(await listDir(join(fx.dir, 'staging'))).toEqual([]);
  });

  it('refuses data over the size cap with 413, declared or streamed, and kills only the streamed one', async () => {
    const declared = await client.create({ name: 'declared-too-big' });
    const path = join(fx.dir, 'big.raw');
    await import('node:fs/promises').then((fs) => fs.writeFile(path, randomBytes(1024 * 1024 + 1)));
    const declaredErr = await client.upload(declared.id, path).catch((e: unknown) => e);
    expect(declaredErr).toBeInstanceOf(ImageUploadFailed);
    expect((declaredErr as ImageUploadFailed).status).toBe(413);
    // Refused before any byte was accepted: still queued, so a correct upload can follow.
    expect((await client.get(declared.id)).status).toBe('queued');

    const streamed = await client.create({ name: 'streamed-too-big' });
    const chunks = Array.from({ length: 20 }, () => randomBytes(64 * 1024));
    await expect(client.upload(streamed.id, Readable.from(chunks))).rejects.toBeInstanceOf(ImageUploadFailed);
    await waitFor(async () => (await client.get(streamed.id)).status === 'killed', 'killed');
    expect(await listDir(join(fx.dir, 'staging'))).toEqual([]);
    expect(await listDir(join(fx.dir, 'files'))).toEqual([]);
  });

  it('discards the data of an image deleted during its upload', async () => {
    const image = await client.create({ name: 'deleted-mid-upload' });
    const source = stallingSource(10 * 1024);
    const upload = client.upload(image.id, source);
    await waitFor(async () => (await client.get(image.id)).status === 'saving', 'saving');
    await client.delete(image.id);
    source.end(randomBytes(1024));
    const err = await upload.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageUploadFailed);
    expect((err as ImageUploadFailed).status).toBe(410);
    expect(await listDir(join(fx.dir, 'files'))).toEqual([]);
    expect(await client.list()).toEqual([]);
  });
});
