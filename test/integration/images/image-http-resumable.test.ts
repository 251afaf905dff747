// The resumable upload extension over real HTTP: the wire contract as a non-TS client sees it,
// and GlanceHttpClient resuming an upload whose connection was cut in the middle of a PATCH.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { GlanceHttpClient, ImageConflict, ImageNotFound, ImageUploadFailed, LOGICAL_DIGEST_PROPERTY, StagedOffsetMismatch } from '../../../src/images/client';
import { allDataRawLayout, allDataRawOpen } from '../../support/raw-layout';
import { finishUpload, hashBytes, hashStream, raw, startFixture, waitFor, type ImageServerFixture } from './image-server-fixture';

let fx: ImageServerFixture;
let client: GlanceHttpClient;

beforeEach(async () => {
  fx = await startFixture({ maxImageBytes: 64 * 1024 * 1024 });
  client = new GlanceHttpClient(fx.server.url);
});
afterEach(async () => fx.cleanup());

const JSON_TYPE = { 'Content-Type': 'application/json' };
describe('wire contract', () => {
  it('open, state, append, commit and discard answer with the documented statuses and headers', async () => {
    const image = await client.create({ name: 'wire', disk_format: 'raw', container_format: 'bare' });
    const base = fx.server.url;
    const path = `/v2/images/${image.id}/resumable`;
    const opened = await raw(base, 'POST', path, { headers: JSON_TYPE, body: JSON.stringify(allDataRawOpen(512, 'snap-1')) });
    expect([opened.status, opened.json, opened.headers.get('upload-offset'), opened.headers.get('upload-length')]).toEqual([201, { offset: 0, size: 512, token: 'snap-1' }, '0', '512']);
    expect(opened.headers.get('resumable-upload')).toBe('1');
    expect((await raw(base, 'POST', path, { headers: JSON_TYPE, body: JSON.stringify(allDataRawOpen(512, 'snap-1')) })).status).toBe(200);
    const conflict = await raw(base, 'POST', path, { headers: JSON_TYPE, body: JSON.stringify(allDataRawOpen(512, 'snap-2')) });
    expect([conflict.status, (conflict.json as { error: { message: string } }).error.message]).toEqual([409, expect.stringContaining('DELETE')]);
    expect((await raw(base, 'POST', path, { headers: JSON_TYPE, body: JSON.stringify({ ...allDataRawOpen(512, 'x'), size: 'ten' }) })).status).toBe(400);
    // Without a layout: the plain resumable upload is retired.
    expect((await raw(base, 'POST', path, { headers: JSON_TYPE, body: JSON.stringify({ size: 512, token: 'x' }) })).status).toBe(400);
    expect((await client.get(image.id)).status).toBe('uploading');

    const octets = { 'Content-Type': 'application/offset+octet-stream' };
    // One 512-byte sector of a raw disk that is all data: the staged bytes are the image.
    const whole = randomBytes(512);
    const first = await raw(base, 'PATCH', path, { headers: { ...octets, 'Upload-Offset': '0' }, body: whole.subarray(0, 5) });
    expect([first.status, first.headers.get('upload-offset')]).toEqual([204, '5']);
    const stale = await raw(base, 'PATCH', path, { headers: { ...octets, 'Upload-Offset': '0' }, body: whole.subarray(0, 5) });
    expect([stale.status, stale.headers.get('upload-offset')]).toEqual([409, '5']);
    expect((stale.json as { error: { message: string } }).error.message).toContain('committed offset 5');
    expect((await raw(base, 'PATCH', path, { headers: { 'Content-Type': 'application/octet-stream', 'Upload-Offset': '5' }, body: 'x' })).status).toBe(415);
    expect((await raw(base, 'PATCH', path, { headers: octets, body: 'x' })).status).toBe(400);
    const over = await raw(base, 'PATCH', path, { headers: { ...octets, 'Upload-Offset': '5' }, body: randomBytes(508) });
    expect([over.status, over.headers.get('upload-offset')]).toEqual([413, '5']);
    const head = await raw(base, 'HEAD', path);
    expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length'), head.text]).toEqual([200, '5', '512', '']);
    expect((await raw(base, 'GET', path)).json).toEqual({ offset: 5, size: 512, token: 'snap-1' });

    const early = await raw(base, 'POST', `${path}/commit`, { headers: JSON_TYPE, body: '{}' });
    expect(early.status).toBe(409);
    const put = await raw(base, 'PUT', `/v2/images/${image.id}/file`, { headers: { 'Content-Type': 'application/octet-stream' }, body: 'whole' });
    expect(put.status).toBe(409);
    expect((await raw(base, 'PUT', path)).status).toBe(405);

    // Chunked (no Content-Length) is accepted too.
    const chunked = await fetch(`${base}${path}`, { method: 'PATCH', headers: { ...octets, 'Upload-Offset': '5' }, body: Readable.toWeb(Readable.from([whole.subarray(5, 7), whole.subarray(7)])) as ReadableStream, duplex: 'half' } as RequestInit);
    expect([chunked.status, chunked.headers.get('upload-offset')]).toEqual([204, '512']);
    const withDigest = await raw(base, 'POST', `${path}/commit`, { headers: JSON_TYPE, body: JSON.stringify({ md5: hashBytes(whole).md5 }) });
    expect(withDigest.status).toBe(400);
    const committed = await raw(base, 'POST', `${path}/commit`, { headers: JSON_TYPE, body: JSON.stringify({ properties: { k: 'v' } }) });
    expect(committed.status).toBe(200);
    expect(committed.json).toMatchObject({ id: image.id, status: 'active', size: 512, k: 'v' });
    await waitFor(async () => (await client.get(image.id)).checksum === hashBytes(whole).md5, 'the served checksums');
    const gone = await raw(base, 'HEAD', path);
    expect([gone.status, gone.headers.get('resumable-upload')]).toEqual([404, '1']);

    const other = await client.create({ name: 'discarded' });
    const otherPath = `/v2/images/${other.id}/resumable`;
    await raw(base, 'POST', otherPath, { headers: JSON_TYPE, body: JSON.stringify(allDataRawOpen(512, 't')) });
    expect((await raw(base, 'DELETE', otherPath)).status).toBe(204);
    expect((await raw(base, 'DELETE', otherPath)).status).toBe(404);
    expect((await client.get(other.id)).status).toBe('queued');
    const missing = await raw(base, 'GET', '/v2/images/00000000-0000-4000-8000-000000000000/resumable');
    expect([missing.status, missing.headers.get('resumable-upload')]).toEqual([404, null]);
  });
});

describe('GlanceHttpClient', () => {
  it('resumes after the connection is cut mid-PATCH: the server keeps what it received, the result hashes right', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 512);
    const layout = allDataRawLayout(bytes.length);
    const image = await client.create({ name: 'resumed', disk_format: 'raw', container_format: 'bare' });
    expect(await client.openStagedUpload(image.id, bytes.length, 'attempt-1', layout)).toEqual({ offset: 0, size: bytes.length, token: 'attempt-1' });

    const cutAt = 1024 * 1024 + 7;
    const source = new PassThrough();
    source.write(bytes.subarray(0, cutAt));
    const controller = new AbortController();
    let sent = 0;
    const append = client.appendStaged(image.id, 0, source, { signal: controller.signal, onProgress: (n) => (sent = n) });
    const dataFile = join(fx.dir, 'resumable', `${image.id}.data`);
    await waitFor(async () => (await stat(dataFile)).size >= cutAt, 'the first bytes on the server');
    controller.abort();
    expect(await append.catch((e: unknown) => e)).toBeInstanceOf(ImageUploadFailed);
    expect(sent).toBe(cutAt);

    // The bytes received before the cut are committed once the server has seen the drop.
    await waitFor(async () => (await client.stagedUpload(image.id))?.offset === cutAt, 'the committed offset');
    expect((await client.get(image.id)).status).toBe('uploading');
    // The same token re-opens the session where it stands; a stale offset is corrected by the server.
    expect(await client.openStagedUpload(image.id, bytes.length, 'attempt-1', layout)).toEqual({ offset: cutAt, size: bytes.length, token: 'attempt-1' });
    const stale = await client.appendStaged(image.id, 0, Readable.from([bytes]), { length: bytes.length }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(StagedOffsetMismatch);
    expect((stale as StagedOffsetMismatch).committedOffset).toBe(cutAt);

    expect(await finishUpload(client, image.id, bytes)).toEqual({ resumedAt: cutAt });
    const expected = hashBytes(bytes);
    const active = await client.commitStaged(image.id, { properties: { image_type: 'snapshot' } });
    expect(active).toMatchObject({ status: 'active', size: expected.size });
    expect(active.properties).toMatchObject({ image_type: 'snapshot' });
    await waitFor(async () => (await client.get(image.id)).checksum === expected.md5, 'the served checksums');
    expect(await client.get(image.id)).toMatchObject({ os_hash_algo: 'sha512', os_hash_value: expected.sha512 });
    expect(await hashStream(await client.download(image.id))).toEqual(expected);
    expect(await client.stagedUpload(image.id)).toBeNull();
  });

  it('maps refusals: another token conflicts, a second concurrent append conflicts, a wrong logical digest kills the image', async () => {
    const image = await client.create({ name: 'refusals' });
    const layout = allDataRawLayout(512);
    await client.openStagedUpload(image.id, 512, 'a', layout);
    await expect(client.openStagedUpload(image.id, 512, 'b', layout)).rejects.toBeInstanceOf(ImageConflict);
    const slow = new PassThrough();
    slow.write(Buffer.alloc(3, 'a'));
    const first = client.appendStaged(image.id, 0, slow);
    await waitFor(async () => (await stat(join(fx.dir, 'resumable', `${image.id}.data`))).size === 3, 'the first append in flight');
    const second = await client.appendStaged(image.id, 0, Readable.from([Buffer.from('abc')])).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(ImageConflict);
    expect(second).not.toBeInstanceOf(StagedOffsetMismatch);
    slow.end(Buffer.alloc(509, 'b'));
    expect(await first).toBe(512);
    const wrong = await client.commitStaged(image.id, { properties: { [LOGICAL_DIGEST_PROPERTY]: `sha256-256k-blocks:${'0'.repeat(64)}` } }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ImageUploadFailed);
    expect((await client.get(image.id)).status).toBe('killed');
    // A killed image takes a new attempt.
    expect(await client.openStagedUpload(image.id, 512, 'c', layout)).toEqual({ offset: 0, size: 512, token: 'c' });
    await client.discardStaged(image.id);
    await client.discardStaged(image.id);
    expect((await client.get(image.id)).status).toBe('queued');
    await expect(client.appendStaged(image.id, 0, Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(ImageConflict);
    expect(await client.openStagedUpload('00000000-0000-4000-8000-000000000000', 1, 't', allDataRawLayout(512))).toBeNull();
  });

  it('uploads an async generator with a declared length through the plain PUT, and refuses a short one', async () => {
    const chunks = [randomBytes(100_000), randomBytes(50_000)];
    const image = await client.create({ name: 'generated' });
    async function* generate(parts: Buffer[]): AsyncGenerator<Buffer> {
      for (const part of parts) yield part;
    }
    let last = 0;
    await client.upload(image.id, generate(chunks), { length: 150_000, onProgress: (n) => (last = n) });
    expect(last).toBe(150_000);
    expect(await client.get(image.id)).toMatchObject({ status: 'active', size: 150_000, checksum: hashBytes(Buffer.concat(chunks)).md5 });
    const short = await client.create({ name: 'short' });
    await expect(client.upload(short.id, generate(chunks), { length: 150_001 })).rejects.toBeInstanceOf(ImageUploadFailed);
    await waitFor(async () => (await client.get(short.id)).status === 'killed', 'killed');
  });
});

describe('against a server without the extension (a real Glance)', () => {
  let glance: Server;
  beforeEach(async () => {
    glance = createServer((req, res) => {
      req.resume();
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 Not Found\n\nThe resource could not be found.\n');
    });
    await new Promise<void>((r) => glance.listen(0, '127.0.0.1', r));
  });
  afterEach(async () => new Promise<void>((r) => glance.close(() => r())));

  it('answers null / nothing to discard, so callers fall back to the plain PUT', async () => {
    const plain = new GlanceHttpClient(`http://127.0.0.1:${(glance.address() as AddressInfo).port}`);
    const id = '3b6f8c1e-6f53-4c43-9b5e-2a5f0d3f6d11';
    expect(await plain.openStagedUpload(id, 10, 't', allDataRawLayout(512))).toBeNull();
    expect(await plain.stagedUpload(id)).toBeNull();
    await expect(plain.discardStaged(id)).resolves.toBeUndefined();
    await expect(plain.get(id)).rejects.toBeInstanceOf(ImageNotFound);
  });
});
