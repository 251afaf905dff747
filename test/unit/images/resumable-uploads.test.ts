// The resumable upload extension at the service level: opening and re-opening sessions (always
// with a layout), appends at the committed offset only, the size bound, commit checks and the
// status machine queued|killed → uploading → active | killed | queued. The sessions here stage an
// all-data raw disk, whose staged bytes are the served image.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ImageConflict, ImageNotFound, ImageRequestRejected, ImageTooLarge, ImageUploadFailed, StagedOffsetMismatch } from '../../../src/images/client';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { allDataRawOpen } from '../../support/raw-layout';
import { download } from './composed-fixture';

let dir: string;
let service: ImageService;

async function openService(): Promise<ImageService> {
  return ImageService.open({ dataDir: dir, maxImageBytes: 1024 * 1024 });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-resumable-'));
  service = await openService();
});
afterEach(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
const source = (...parts: Buffer[]): Readable => Readable.from(parts);
const dataFile = (id: string): string => join(dir, 'resumable', `${id}.data`);
const sessionFiles = async (): Promise<string[]> => (await readdir(join(dir, 'resumable'))).sort();
const failure = async (p: Promise<unknown>): Promise<unknown> => p.then(() => new Error('expected a failure'), (e: unknown) => e);

async function queuedImage(): Promise<string> {
  return (await service.create(admin, { name: 'snap', disk_format: 'raw', container_format: 'bare' })).id;
}

describe('open', () => {
  it('opens a session (created), re-opens it with the same size and token, refuses another size or token', async () => {
    const id = await queuedImage();
    expect(await service.resumable.open(admin, id, allDataRawOpen(512, 'attempt-1'))).toEqual({ state: { offset: 0, size: 512, token: 'attempt-1' }, created: true });
    expect(service.get(admin, id).status).toBe('uploading');
    expect(await sessionFiles()).toEqual([`${id}.data`, `${id}.json`]);
    await service.resumable.append(admin, id, 0, source(Buffer.from('abcd')));
    expect(await service.resumable.open(admin, id, allDataRawOpen(512, 'attempt-1'))).toEqual({ state: { offset: 4, size: 512, token: 'attempt-1' }, created: false });
    for (const other of [allDataRawOpen(512, 'attempt-2'), allDataRawOpen(1024, 'attempt-1')]) {
      const err = await failure(service.resumable.open(admin, id, other));
      expect(err).toBeInstanceOf(ImageConflict);
      expect((err as Error).message).toMatch(/DELETE \/v2\/images\/.*\/resumable/);
    }
    expect(service.resumable.state(admin, id)).toEqual({ offset: 4, size: 512, token: 'attempt-1' });
  });

  it('validates the body and the size cap, and opens only for queued or killed images', async () => {
    const id = await queuedImage();
    const good = allDataRawOpen(512, 't');
    const bodies = [{}, { ...good, size: -1 }, { ...good, size: 1.5 }, { ...good, token: '' }, { ...good, token: 'a b' }, { ...good, token: 'x'.repeat(129) }, { ...good, extra: 1 }, { ...good, size: 1024 }];
    // An upload without a layout (a plain one, whose staged bytes were the image) is retired.
    bodies.push({ size: 512, token: 't' });
    for (const body of bodies) {
      const err = await failure(service.resumable.open(admin, id, body));
      expect([(err as ImageRequestRejected).status, body]).toEqual([400, body]);
    }
    expect(await failure(service.resumable.open(admin, id, allDataRawOpen(1024 * 1024 + 512, 't')))).toBeInstanceOf(ImageTooLarge);
    expect(service.get(admin, id).status).toBe('queued');
    expect(await sessionFiles()).toEqual([]);
    const active = await queuedImage();
    await service.upload(admin, active, source(Buffer.from('done')));
    expect(await failure(service.resumable.open(admin, active, allDataRawOpen(512, 't')))).toBeInstanceOf(ImageConflict);
    expect(await failure(service.resumable.open(admin, '00000000-0000-4000-8000-000000000000', allDataRawOpen(512, 't')))).toBeInstanceOf(ImageNotFound);
  });

  it('answers 404 for state, append, commit and discard without a session', async () => {
    const id = await queuedImage();
    expect(() => service.resumable.state(admin, id)).toThrow(ImageNotFound);
    expect(await failure(service.resumable.append(admin, id, 0, source(Buffer.from('x'))))).toBeInstanceOf(ImageNotFound);
    expect(await failure(service.resumable.commit(admin, id, {}))).toBeInstanceOf(ImageNotFound);
    expect(await failure(service.resumable.discard(admin, id))).toBeInstanceOf(ImageNotFound);
  });
});

describe('append', () => {
  it('refuses an offset other than the committed length with the committed offset, writing nothing', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, allDataRawOpen(512, 't'));
    expect(await service.resumable.append(admin, id, 0, source(Buffer.from('abc')))).toEqual({ offset: 3, size: 512, token: 't' });
    for (const offset of [0, 2, 4]) {
      const err = await failure(service.resumable.append(admin, id, offset, source(Buffer.from('zzzzz'))));
      expect(err).toBeInstanceOf(StagedOffsetMismatch);
      expect(err).toMatchObject({ status: 409, committedOffset: 3 });
      expect((err as Error).message).toContain('committed offset 3');
    }
    expect(await readFile(dataFile(id), 'utf8')).toBe('abc');
    expect(await service.resumable.append(admin, id, 3, source(Buffer.from('de'), Buffer.from('fgh')))).toMatchObject({ offset: 8 });
    expect(await readFile(dataFile(id), 'utf8')).toBe('abcdefgh');
  });

  it('refuses bytes past the size: a declared overflow writes nothing, a streamed one keeps only up to the size', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, allDataRawOpen(512, 't'));
    const whole = randomBytes(512);
    expect(await failure(service.resumable.append(admin, id, 0, source(randomBytes(513)), 513))).toBeInstanceOf(ImageTooLarge);
    expect((await stat(dataFile(id))).size).toBe(0);
    expect(await failure(service.resumable.append(admin, id, 0, source(whole.subarray(0, 508), Buffer.concat([whole.subarray(508), Buffer.from('56789')]))))).toBeInstanceOf(ImageTooLarge);
    expect(await readFile(dataFile(id))).toEqual(whole);
    expect(service.resumable.state(admin, id).offset).toBe(512);
    // Complete: even one more byte is refused and nothing is added.
    expect(await failure(service.resumable.append(admin, id, 512, source(Buffer.from('x'))))).toBeInstanceOf(ImageTooLarge);
    expect((await stat(dataFile(id))).size).toBe(512);
  });

  it('keeps and counts the bytes received before the source broke (a dropped connection)', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, allDataRawOpen(512, 't'));
    const broken = new PassThrough();
    const append = service.resumable.append(admin, id, 0, broken);
    broken.write(Buffer.from('0123456789'));
    await new Promise((r) => setTimeout(r, 20));
    broken.destroy(new Error('connection reset'));
    const err = await failure(append);
    expect(err).toBeInstanceOf(ImageUploadFailed);
    expect(service.resumable.state(admin, id).offset).toBe(10);
    expect(await readFile(dataFile(id), 'utf8')).toBe('0123456789');
    expect(service.get(admin, id).status).toBe('uploading');
  });

  it('lets one request hold a session: a concurrent append conflicts without an offset', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, allDataRawOpen(512, 't'));
    const slow = new PassThrough();
    const first = service.resumable.append(admin, id, 0, slow);
    const second = await failure(service.resumable.append(admin, id, 0, source(Buffer.from('x'))));
    expect(second).toBeInstanceOf(ImageConflict);
    expect(second).not.toBeInstanceOf(StagedOffsetMismatch);
    expect(await failure(service.resumable.discard(admin, id))).toBeInstanceOf(ImageConflict);
    slow.end(Buffer.from('abcd'));
    expect((await first).offset).toBe(4);
  });
});

describe('commit', () => {
  it('refuses an incomplete upload or a bad body, then composes the image with merged properties; its digests follow', async () => {
    const id = (await service.create(admin, { name: 'snap', image_type: 'snapshot' })).id;
    const bytes = randomBytes(5120);
    await service.resumable.open(admin, id, allDataRawOpen(bytes.length, 't'));
    await service.resumable.append(admin, id, 0, source(bytes.subarray(0, 1234)));
    const early = await failure(service.resumable.commit(admin, id, {}));
    expect(early).toBeInstanceOf(ImageConflict);
    expect((early as Error).message).toContain('1234 of 5120');
    expect(service.get(admin, id).status).toBe('uploading');
    await service.resumable.append(admin, id, 1234, source(bytes.subarray(1234)));
    expect(await failure(service.resumable.commit(admin, id, { properties: { status: 'x' } }))).toMatchObject({ status: 403 });
    // The staged bytes are guest data: no client md5 or sha512 of them is taken.
    expect(await failure(service.resumable.commit(admin, id, { md5: md5(bytes) }))).toMatchObject({ status: 400 });
    expect(await failure(service.resumable.commit(admin, id, { properties: { k: 'v\u001b[2J' } }))).toMatchObject({ status: 400 });
    expect(await failure(service.resumable.commit(admin, id, { properties: { 'k\u0085': 'v' } }))).toMatchObject({ status: 400 });
    const active = await service.resumable.commit(admin, id, { properties: { stream_format: 'raw' } });
    expect(active).toMatchObject({ status: 'active', size: 5120 });
    expect(active.properties).toMatchObject({ image_type: 'snapshot', stream_format: 'raw' });
    expect(await download(service, id)).toEqual(bytes);
    await service.checksums.idle();
    expect(service.get(admin, id)).toMatchObject({ checksum: md5(bytes), os_hash_algo: 'sha512', os_hash_value: sha512(bytes) });
    expect(await sessionFiles()).toEqual([]);
    expect(() => service.resumable.state(admin, id)).toThrow(ImageNotFound);
  });

  it('commits an empty upload', async () => {
    const id = await queuedImage();
    expect((await service.resumable.open(admin, id, allDataRawOpen(0, 't'))).state).toEqual({ offset: 0, size: 0, token: 't' });
    expect(await service.resumable.commit(admin, id, {})).toMatchObject({ status: 'active', size: 0 });
  });
});

describe('status machine', () => {
  it('queued → uploading → queued on discard → uploading → active; the plain PUT is refused while uploading', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, allDataRawOpen(512, 'a'));
    await service.resumable.append(admin, id, 0, source(Buffer.from('ab')));
    const put = await failure(service.upload(admin, id, source(Buffer.from('xyz'))));
    expect(put).toBeInstanceOf(ImageConflict);
    expect((put as Error).message).toContain('from uploading');
    await expect(service.update(admin, id, { disk_format: 'qcow2' })).rejects.toBeInstanceOf(ImageConflict);
    await service.resumable.discard(admin, id);
    expect(service.get(admin, id).status).toBe('queued');
    expect(await sessionFiles()).toEqual([]);
    await service.resumable.open(admin, id, allDataRawOpen(512, 'b'));
    expect(service.resumable.state(admin, id).offset).toBe(0);
    await service.resumable.append(admin, id, 0, source(Buffer.alloc(512, 'xyz')));
    expect((await service.resumable.commit(admin, id, {})).status).toBe('active');
    expect(await failure(service.resumable.open(admin, id, allDataRawOpen(512, 'c')))).toBeInstanceOf(ImageConflict);
  });

  it('does not open while a plain upload is saving', async () => {
    const id = await queuedImage();
    const slow = new PassThrough();
    const put = service.upload(admin, id, slow);
    expect(await failure(service.resumable.open(admin, id, allDataRawOpen(512, 'a')))).toBeInstanceOf(ImageConflict);
    slow.end(Buffer.from('abc'));
    expect((await put).status).toBe('active');
  });

  it('deleting the image removes its session, also while an append is in flight', async () => {
    const idle = await queuedImage();
    await service.resumable.open(admin, idle, allDataRawOpen(512, 'a'));
    await service.delete(admin, idle);
    expect(await sessionFiles()).toEqual([]);

    const busy = await queuedImage();
    await service.resumable.open(admin, busy, allDataRawOpen(512, 'a'));
    const slow = new PassThrough();
    const append = service.resumable.append(admin, busy, 0, slow);
    slow.write(Buffer.from('abc'));
    await new Promise((r) => setTimeout(r, 20));
    await service.delete(admin, busy);
    slow.end(Buffer.from('def'));
    expect(await failure(append)).toMatchObject({ status: 410 });
    expect(await sessionFiles()).toEqual([]);
  });
});
