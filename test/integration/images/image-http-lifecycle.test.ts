// Full Glance v2 lifecycle over real HTTP, through both GlanceHttpClient and raw requests.
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GlanceHttpClient, ImageConflict, ImageNotFound, ImageServiceUnavailable } from '../../../src/images/client';
import { freePort } from '../../support/free-port';
import { hashBytes, hashStream, listDir, raw, startFixture, type ImageServerFixture } from './image-server-fixture';

let fx: ImageServerFixture;
let client: GlanceHttpClient;

beforeEach(async () => {
  fx = await startFixture();
  client = new GlanceHttpClient(fx.server.url);
});
afterEach(async () => fx.cleanup());

const snapshotMeta = { name: 'snap-1', container_format: 'bare', disk_format: 'qcow2', properties: { instance_uuid: 'abc', image_type: 'snapshot' } };

describe('image lifecycle', () => {
  it('creates queued, uploads to active with correct checksums, downloads the same bytes, deletes', async () => {
    const created = await client.create({ ...snapshotMeta, visibility: 'private' });
    expect(created).toMatchObject({ status: 'queued', name: 'snap-1', disk_format: 'qcow2', visibility: 'private', size: null, checksum: null });
    expect(created.properties).toEqual({ instance_uuid: 'abc', image_type: 'snapshot' });

    // Properties are top-level keys on the wire, exactly like Glance.
    const wire = await raw(fx.server.url, 'GET', `/v2/images/${created.id}`);
    expect(wire.json).toMatchObject({ id: created.id, instance_uuid: 'abc', image_type: 'snapshot', self: `/v2/images/${created.id}`, file: `/v2/images/${created.id}/file` });

    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const progress: number[] = [];
    await client.upload(created.id, Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { onProgress: (n) => progress.push(n) });
    expect(progress[progress.length - 1]).toBe(bytes.length);

    const expected = hashBytes(bytes);
    const active = await client.get(created.id);
    expect(active).toMatchObject({ status: 'active', size: expected.size, checksum: expected.md5, os_hash_algo: 'sha512', os_hash_value: expected.sha512 });
    expect(await hashStream(await client.download(created.id))).toEqual(expected);

    expect((await client.list({ status: 'active' })).map((i) => i.id)).toEqual([created.id]);
    expect(await client.list({ status: 'queued' })).toEqual([]);

    await client.delete(created.id);
    await expect(client.get(created.id)).rejects.toBeInstanceOf(ImageNotFound);
    await expect(client.download(created.id)).rejects.toBeInstanceOf(ImageNotFound);
    await expect(client.delete(created.id)).rejects.toBeInstanceOf(ImageNotFound);
    expect(await client.list()).toEqual([]);
    expect(await listDir(join(fx.dir, 'files'))).toEqual([]);
  });

  it('uploads from a file path with Content-Length and reports progress up to the size', async () => {
    const bytes = randomBytes(1024 * 1024 + 5);
    const path = join(fx.dir, 'source.raw');
    await writeFile(path, bytes);
    const image = await client.create({ name: 'from-file', container_format: 'bare', disk_format: 'raw' });
    let last = 0;
    await client.upload(image.id, path, { onProgress: (n) => (last = n) });
    expect(last).toBe(bytes.length);
    expect((await client.get(image.id)).checksum).toBe(hashBytes(bytes).md5);
  });

  it('answers 201 with Location, 204 for data of a queued image, and an empty download stream', async () => {
    const res = await raw(fx.server.url, 'POST', '/v2/images', { body: JSON.stringify({ name: 'x' }), headers: { 'Content-Type': 'application/json' } });
    expect(res.status).toBe(201);
    const id = (res.json as { id: string }).id;
    expect(res.headers.get('location')).toBe(`/v2/images/${id}`);
    expect((await raw(fx.server.url, 'GET', `/v2/images/${id}/file`)).status).toBe(204);
    expect((await hashStream(await client.download(id))).size).toBe(0);
  });

  it('honours a client-chosen id once and answers 409 for a repeat', async () => {
    const id = randomUUID();
    expect((await client.create({ id, name: 'a' })).id).toBe(id);
    await expect(client.create({ id, name: 'a' })).rejects.toBeInstanceOf(ImageConflict);
    expect(await client.list()).toHaveLength(1);
  });

  it('refuses a second upload of an active image with 409 and keeps the first data', async () => {
    const image = await client.create({ name: 'once' });
    await client.upload(image.id, Readable.from([Buffer.from('first')]));
    await expect(client.upload(image.id, Readable.from([Buffer.from('second')]))).rejects.toBeInstanceOf(ImageConflict);
    const res = await raw(fx.server.url, 'PUT', `/v2/images/${image.id}/file`, { body: 'x', headers: { 'Content-Type': 'application/octet-stream' } });
    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ error: { code: 409 } });
    expect(await hashStream(await client.download(image.id))).toEqual(hashBytes(Buffer.from('first')));
  });

  it('lets exactly one of two concurrent uploads claim a queued image', async () => {
    const image = await client.create({ name: 'race' });
    const results = await Promise.allSettled([
      client.upload(image.id, Readable.from([Buffer.from('aaaa')])),
      client.upload(image.id, Readable.from([Buffer.from('bbbb')])),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.status === 'rejected' && rejected.reason).toBeInstanceOf(ImageConflict);
    expect((await client.get(image.id)).size).toBe(4);
  });

  it('answers 404 for unknown ids, non-UUID ids and unknown paths, and 415 for a wrong upload type', async () => {
    expect((await raw(fx.server.url, 'GET', `/v2/images/${randomUUID()}`)).status).toBe(404);
    expect((await raw(fx.server.url, 'GET', '/v2/images/..%2F..%2Fetc')).status).toBe(404);
    expect((await raw(fx.server.url, 'GET', '/v2/nothing')).status).toBe(404);
    expect((await raw(fx.server.url, 'POST', `/v2/images/${randomUUID()}`)).status).toBe(405);
    await expect(client.get('not-a-uuid')).rejects.toBeInstanceOf(ImageNotFound);
    await expect(client.upload(randomUUID(), Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(ImageNotFound);
    const image = await client.create({ name: 'typed' });
    const res = await raw(fx.server.url, 'PUT', `/v2/images/${image.id}/file`, { body: 'x', headers: { 'Content-Type': 'text/plain' } });
    expect(res.status).toBe(415);
    expect((await client.get(image.id)).status).toBe('queued');
  });

  it('lists newest first and pages with next links, which the client follows', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 30; i += 1) ids.push((await client.create({ name: `img-${i}` })).id);
    const first = await raw(fx.server.url, 'GET', '/v2/images?limit=10');
    const page = first.json as { images: { id: string }[]; next?: string };
    expect(page.images).toHaveLength(10);
    expect(page.next).toMatch(/^\/v2\/images\?.*marker=/);
    const all = await client.list();
    expect(all).toHaveLength(30);
    expect(new Set(all.map((i) => i.id))).toEqual(new Set(ids));
    expect((await client.list({ name: 'img-7' })).map((i) => i.id)).toEqual([ids[7]]);
    expect((await raw(fx.server.url, 'GET', '/v2/images?limit=0')).status).toBe(400);
    expect((await raw(fx.server.url, 'GET', '/v2/images?status=bogus')).status).toBe(400);
  });

  it('survives a restart with records and data intact', async () => {
    const image = await client.create({ ...snapshotMeta });
    await client.upload(image.id, Readable.from([Buffer.from('persisted bytes')]));
    const queued = await client.create({ name: 'still-queued' });
    const before = await client.get(image.id);
    const server = await fx.restart();
    const after = new GlanceHttpClient(server.url);
    expect(await after.get(image.id)).toEqual(before);
    expect((await after.get(image.id)).properties).toEqual(snapshotMeta.properties);
    expect((await after.get(queued.id)).status).toBe('queued');
    expect(await hashStream(await after.download(image.id))).toEqual(hashBytes(Buffer.from('persisted bytes')));
    expect(server.recovery).toEqual({ removedStagingFiles: [], killedImageIds: [], resumedUploadIds: [], removedUploadSessionIds: [], removedIndexIds: [], removedChunks: 0 });
  });
});

describe('request validation', () => {
  const post = (body: string, headers: Record<string, string> = { 'Content-Type': 'application/json' }) =>
    raw(fx.server.url, 'POST', '/v2/images', { body, headers });

  it.each([
    ['an unknown disk format', { name: 'x', disk_format: 'floppy' }, 400],
    ['a non-string custom property', { name: 'x', foo: 12 }, 400],
    ['a read-only attribute', { name: 'x', status: 'active' }, 403],
    ['a reserved os_glance attribute', { name: 'x', os_glance_import_task: 'y' }, 403],
    ['a malformed id', { id: 'abc', name: 'x' }, 400],
    ['a JSON array', [1, 2], 400],
  ])('rejects %s and creates nothing', async (_what, body, status) => {
    const res = await post(JSON.stringify(body));
    expect(res.status).toBe(status);
    expect(res.json).toMatchObject({ error: { code: status, message: expect.any(String) } });
    expect(await client.list()).toEqual([]);
  });

  it('rejects invalid JSON (400), a wrong content type (415) and an oversized body (413)', async () => {
    expect((await post('{"name":')).status).toBe(400);
    expect((await post('{}', { 'Content-Type': 'text/plain' })).status).toBe(415);
    const huge = JSON.stringify({ name: 'x', blob: 'y'.repeat(200 * 1024) });
    const res = await post(huge);
    expect(res.status).toBe(413);
    expect(await client.list()).toEqual([]);
  });
});

describe('client transport errors', () => {
  it('maps connection refused to a retryable ImageServiceUnavailable', async () => {
    const dead = new GlanceHttpClient(`http://127.0.0.1:${await freePort()}`);
    const err = await dead.get(randomUUID()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageServiceUnavailable);
    expect((err as ImageServiceUnavailable).retryable).toBe(true);
    await expect(dead.upload(randomUUID(), Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(ImageServiceUnavailable);
  });
});
