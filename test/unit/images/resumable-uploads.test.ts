// The resumable upload extension at the service level: opening and re-opening sessions, appends
// at the committed offset only, the size bound, commit checks (client digests, verify-after-commit)
// and the status machine queued|killed → uploading → active | killed | queued.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ImageChecksumMismatch, ImageConflict, ImageNotFound, ImageRequestRejected, ImageTooLarge, ImageUploadFailed, ImageVerificationFailed, StagedOffsetMismatch } from '../../../src/images/client';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';

let dir: string;
let service: ImageService;

async function openService(options: { verifyAfterCommit?: boolean } = {}): Promise<ImageService> {
  return ImageService.open({ dataDir: dir, maxImageBytes: 1024 * 1024, ...options });
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
    expect(await service.resumable.open(admin, id, { size: 10, token: 'attempt-1' })).toEqual({ state: { offset: 0, size: 10, token: 'attempt-1' }, created: true });
    expect(service.get(admin, id).status).toBe('uploading');
    expect(await sessionFiles()).toEqual([`${id}.data`, `${id}.json`]);
    await service.resumable.append(admin, id, 0, source(Buffer.from('abcd')));
    expect(await service.resumable.open(admin, id, { size: 10, token: 'attempt-1' })).toEqual({ state: { offset: 4, size: 10, token: 'attempt-1' }, created: false });
    for (const other of [{ size: 10, token: 'attempt-2' }, { size: 11, token: 'attempt-1' }]) {
      const err = await failure(service.resumable.open(admin, id, other));
      expect(err).toBeInstanceOf(ImageConflict);
      expect((err as Error).message).toMatch(/DELETE \/v2\/images\/.*\/resumable/);
    }
    expect(service.resumable.state(admin, id)).toEqual({ offset: 4, size: 10, token: 'attempt-1' });
  });

  it('validates the body and the size cap, and opens only for queued or killed images', async () => {
    const id = await queuedImage();
    for (const body of [{}, { size: -1, token: 't' }, { size: 1.5, token: 't' }, { size: 1, token: '' }, { size: 1, token: 'a b' }, { size: 1, token: 'x'.repeat(129) }, { size: 1, token: 't', extra: 1 }]) {
      const err = await failure(service.resumable.open(admin, id, body));
      expect([(err as ImageRequestRejected).status, body]).toEqual([400, body]);
    }
    expect(await failure(service.resumable.open(admin, id, { size: 1024 * 1024 + 1, token: 't' }))).toBeInstanceOf(ImageTooLarge);
    expect(service.get(admin, id).status).toBe('queued');
    expect(await sessionFiles()).toEqual([]);
    const active = await queuedImage();
    await service.upload(admin, active, source(Buffer.from('done')));
    expect(await failure(service.resumable.open(admin, active, { size: 1, token: 't' }))).toBeInstanceOf(ImageConflict);
    expect(await failure(service.resumable.open(admin, '00000000-0000-4000-8000-000000000000', { size: 1, token: 't' }))).toBeInstanceOf(ImageNotFound);
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
    await service.resumable.open(admin, id, { size: 8, token: 't' });
    expect(await service.resumable.append(admin, id, 0, source(Buffer.from('abc')))).toEqual({ offset: 3, size: 8, token: 't' });
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
    await service.resumable.open(admin, id, { size: 6, token: 't' });
    expect(await failure(service.resumable.append(admin, id, 0, source(Buffer.from('1234567')), 7))).toBeInstanceOf(ImageTooLarge);
    expect((await stat(dataFile(id))).size).toBe(0);
    expect(await failure(service.resumable.append(admin, id, 0, source(Buffer.from('1234'), Buffer.from('56789'))))).toBeInstanceOf(ImageTooLarge);
    expect(await readFile(dataFile(id), 'utf8')).toBe('123456');
    expect(service.resumable.state(admin, id).offset).toBe(6);
    // Complete: even one more byte is refused and nothing is added.
    expect(await failure(service.resumable.append(admin, id, 6, source(Buffer.from('x'))))).toBeInstanceOf(ImageTooLarge);
    expect((await stat(dataFile(id))).size).toBe(6);
  });

  it('keeps and counts the bytes received before the source broke (a dropped connection)', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, { size: 100, token: 't' });
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
    await service.resumable.open(admin, id, { size: 4, token: 't' });
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
  it('refuses an incomplete upload, then publishes with both digests and merged properties', async () => {
    const id = (await service.create(admin, { name: 'snap', image_type: 'snapshot' })).id;
    const bytes = randomBytes(5000);
    await service.resumable.open(admin, id, { size: bytes.length, token: 't' });
    await service.resumable.append(admin, id, 0, source(bytes.subarray(0, 1234)));
    const early = await failure(service.resumable.commit(admin, id, {}));
    expect(early).toBeInstanceOf(ImageConflict);
    expect((early as Error).message).toContain('1234 of 5000');
    expect(service.get(admin, id).status).toBe('uploading');
    await service.resumable.append(admin, id, 1234, source(bytes.subarray(1234)));
    expect(await failure(service.resumable.commit(admin, id, { properties: { status: 'x' } }))).toMatchObject({ status: 403 });
    expect(await failure(service.resumable.commit(admin, id, { md5: 'nothex' }))).toMatchObject({ status: 400 });
    expect(await failure(service.resumable.commit(admin, id, { properties: { k: 'v\u001b[2J' } }))).toMatchObject({ status: 400 });
    expect(await failure(service.resumable.commit(admin, id, { properties: { 'k\u0085': 'v' } }))).toMatchObject({ status: 400 });
    const active = await service.resumable.commit(admin, id, { md5: md5(bytes).toUpperCase(), sha512: sha512(bytes), properties: { stream_format: 'qcow2' } });
    expect(active).toMatchObject({ status: 'active', size: 5000, checksum: md5(bytes), os_hash_algo: 'sha512', os_hash_value: sha512(bytes) });
    expect(active.properties).toEqual({ image_type: 'snapshot', stream_format: 'qcow2' });
    expect(await readFile(join(dir, 'files', id))).toEqual(bytes);
    expect(await sessionFiles()).toEqual([]);
    expect(() => service.resumable.state(admin, id)).toThrow(ImageNotFound);
  });

  it('kills the image and removes the staged bytes when a client digest differs; the killed image opens again', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, { size: 3, token: 't' });
    await service.resumable.append(admin, id, 0, source(Buffer.from('abc')));
    const err = await failure(service.resumable.commit(admin, id, { md5: md5(Buffer.from('abc')), sha512: sha512(Buffer.from('abd')) }));
    expect(err).toBeInstanceOf(ImageChecksumMismatch);
    expect(err).toMatchObject({ status: 400 });
    expect((err as Error).message).toMatch(/sha512.*killed/);
    expect(service.get(admin, id).status).toBe('killed');
    expect(await sessionFiles()).toEqual([]);
    expect(await readdir(join(dir, 'files'))).toEqual([]);
    await service.resumable.open(admin, id, { size: 3, token: 'retry' });
    await service.resumable.append(admin, id, 0, source(Buffer.from('abc')));
    expect((await service.resumable.commit(admin, id, { md5: md5(Buffer.from('abc')) })).status).toBe('active');
  });

  it('verify-after-commit catches bytes the disk did not keep: the image is killed, nothing is served', async () => {
    const id = await queuedImage();
    const bytes = randomBytes(4096);
    await service.resumable.open(admin, id, { size: bytes.length, token: 't' });
    await service.resumable.append(admin, id, 0, source(bytes));
    // The storage loses a byte behind the service's back (same length, other content).
    const corrupt = Buffer.from(bytes);
    corrupt[100] = (corrupt[100] ?? 0) ^ 0xff;
    await writeFile(dataFile(id), corrupt);
    // The client's digests match what it sent (and what the service received)…
    const err = await failure(service.resumable.commit(admin, id, { md5: md5(bytes), sha512: sha512(bytes) }));
    // …so only the re-read of the published file can tell.
    expect(err).toBeInstanceOf(ImageVerificationFailed);
    expect(err).toMatchObject({ status: 500 });
    expect((err as Error).message).toMatch(/Verification of image .* failed/);
    expect(service.get(admin, id).status).toBe('killed');
    expect(await readdir(join(dir, 'files'))).toEqual([]);
    expect(await sessionFiles()).toEqual([]);
  });

  it('without verification the same corruption goes unnoticed (what the option buys)', async () => {
    await service.close();
    service = await openService({ verifyAfterCommit: false });
    const id = await queuedImage();
    const bytes = Buffer.from('original bytes');
    await service.resumable.open(admin, id, { size: bytes.length, token: 't' });
    await service.resumable.append(admin, id, 0, source(bytes));
    await writeFile(dataFile(id), Buffer.from('corrupted byte'));
    const active = await service.resumable.commit(admin, id, { md5: md5(bytes) });
    expect(active).toMatchObject({ status: 'active', checksum: md5(bytes) });
    expect(await readFile(join(dir, 'files', id), 'utf8')).toBe('corrupted byte');
  });

  it('commits an empty upload', async () => {
    const id = await queuedImage();
    expect((await service.resumable.open(admin, id, { size: 0, token: 't' })).state).toEqual({ offset: 0, size: 0, token: 't' });
    expect(await service.resumable.commit(admin, id, { md5: md5(Buffer.alloc(0)) })).toMatchObject({ status: 'active', size: 0 });
  });
});

describe('status machine', () => {
  it('queued → uploading → queued on discard → uploading → active; the plain PUT is refused while uploading', async () => {
    const id = await queuedImage();
    await service.resumable.open(admin, id, { size: 3, token: 'a' });
    await service.resumable.append(admin, id, 0, source(Buffer.from('ab')));
    const put = await failure(service.upload(admin, id, source(Buffer.from('xyz'))));
    expect(put).toBeInstanceOf(ImageConflict);
    expect((put as Error).message).toContain('from uploading');
    await expect(service.update(admin, id, { disk_format: 'qcow2' })).rejects.toBeInstanceOf(ImageConflict);
    await service.resumable.discard(admin, id);
    expect(service.get(admin, id).status).toBe('queued');
    expect(await sessionFiles()).toEqual([]);
    await service.resumable.open(admin, id, { size: 3, token: 'b' });
    expect(service.resumable.state(admin, id).offset).toBe(0);
    await service.resumable.append(admin, id, 0, source(Buffer.from('xyz')));
    expect((await service.resumable.commit(admin, id, {})).status).toBe('active');
    expect(await failure(service.resumable.open(admin, id, { size: 3, token: 'c' }))).toBeInstanceOf(ImageConflict);
  });

  it('does not open while a plain upload is saving', async () => {
    const id = await queuedImage();
    const slow = new PassThrough();
    const put = service.upload(admin, id, slow);
    expect(await failure(service.resumable.open(admin, id, { size: 3, token: 'a' }))).toBeInstanceOf(ImageConflict);
    slow.end(Buffer.from('abc'));
    expect((await put).status).toBe('active');
  });

  it('deleting the image removes its session, also while an append is in flight', async () => {
    const idle = await queuedImage();
    await service.resumable.open(admin, idle, { size: 3, token: 'a' });
    await service.delete(admin, idle);
    expect(await sessionFiles()).toEqual([]);

    const busy = await queuedImage();
    await service.resumable.open(admin, busy, { size: 10, token: 'a' });
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
