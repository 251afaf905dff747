// ImageService rules that do not need HTTP: creation validation, visibility, protection, paging.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ImageConflict, ImageNotFound, ImageRequestRejected } from '../../../src/images/client';
import { ImageService, UNAUTHENTICATED_ADMIN, type RequestContext } from '../../../src/images/service';

let dir: string;
let service: ImageService;
const member: RequestContext = { projectId: 'p1', isAdmin: false };
const other: RequestContext = { projectId: 'p2', isAdmin: false };
let tick = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-service-'));
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024, now: () => new Date(Date.UTC(2030, 0, 1, 0, 0, tick++)) });
});
afterEach(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

const statusOf = async (p: Promise<unknown>): Promise<number | undefined> => ((await p.catch((e: unknown) => e)) as ImageRequestRejected).status;

it('stores extra string keys as properties and defaults like Glance', async () => {
  const r = await service.create(member, { name: 'n', instance_uuid: 'i-1', image_type: 'snapshot' });
  expect(r).toMatchObject({ status: 'queued', owner: 'p1', visibility: 'shared', properties: { instance_uuid: 'i-1', image_type: 'snapshot' }, tags: [], protected: false });
});

it('rejects bad bodies with the Glance status codes and stores nothing', async () => {
  expect(await statusOf(service.create(member, null))).toBe(400);
  expect(await statusOf(service.create(member, { size: 10 }))).toBe(403);
  expect(await statusOf(service.create(member, { owner: 'p2' }))).toBe(403);
  expect(await statusOf(service.create(member, { min_disk: -1 }))).toBe(400);
  expect(await statusOf(service.create(member, { tags: 'x' }))).toBe(400);
  expect(service.list(UNAUTHENTICATED_ADMIN, {}, { limit: 10 }).images).toEqual([]);
});

it('refuses control characters in names, property names and property values with 400, storing nothing', async () => {
  for (const body of [{ name: 'a\u001b[31mb' }, { name: 'a\nb' }, { name: 'a\u009bb' }, { 'k\u0000': 'v' }, { 'k\u007f': 'v' }, { k: 'v\u0085' }, { k: '\u001b]0;x\u0007' }]) {
    const err = await service.create(member, body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRequestRejected);
    expect((err as ImageRequestRejected).status).toBe(400);
    expect((err as Error).message).toMatch(/control characters/);
  }
  expect(service.list(UNAUTHENTICATED_ADMIN, {}, { limit: 10 }).images).toEqual([]);
  const ok = await service.create(member, { name: 'é 日本 \u00a0', k: 'v w' });
  expect(ok).toMatchObject({ name: 'é 日本 \u00a0', properties: { k: 'v w' } });
});

it('hides other projects’ images as not found', async () => {
  const r = await service.create(member, { name: 'mine' });
  expect(() => service.get(other, r.id)).toThrow(ImageNotFound);
  await expect(service.delete(other, r.id)).rejects.toBeInstanceOf(ImageNotFound);
  await expect(service.upload(other, r.id, Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(ImageNotFound);
  expect(service.get(member, r.id).status).toBe('queued');
  expect(() => service.get(member, '../../etc/passwd')).toThrow(ImageNotFound);
});

it('refuses to delete a protected image', async () => {
  const r = await service.create(member, { name: 'keep', protected: true });
  expect(await statusOf(service.delete(member, r.id))).toBe(403);
  expect(service.get(member, r.id).status).toBe('queued');
});

it('lets the owner or an admin clear protected, refuses a protected delete to everyone, and lets an admin delete any image', async () => {
  const admin: RequestContext = { projectId: 'ops', isAdmin: true };
  const mine = await service.create(member, { name: 'keep', protected: true });
  await service.upload(member, mine.id, Readable.from([Buffer.from('abc')]));
  expect(await statusOf(service.delete(admin, mine.id))).toBe(403);
  await expect(service.update(other, mine.id, { protected: false })).rejects.toBeInstanceOf(ImageNotFound);
  expect(service.get(member, mine.id).protected).toBe(true);
  expect(await service.update(member, mine.id, { protected: false })).toMatchObject({ status: 'active', protected: false });
  await service.delete(member, mine.id);
  expect(() => service.get(member, mine.id)).toThrow(ImageNotFound);

  const theirs = await service.create(other, { name: 'theirs', protected: true });
  await service.update(admin, theirs.id, { protected: false });
  await service.delete(admin, theirs.id);
  expect(() => service.get(other, theirs.id)).toThrow(ImageNotFound);
});

it('keeps a protected flag set while the upload runs', async () => {
  const r = await service.create(member, { name: 'late' });
  const body = new PassThrough();
  const upload = service.upload(member, r.id, body);
  await service.update(member, r.id, { protected: true });
  body.end(Buffer.from('abc'));
  expect(await upload).toMatchObject({ status: 'active', protected: true });
  expect(service.get(member, r.id).protected).toBe(true);
});

it('claims queued → saving synchronously so a concurrent second upload conflicts', async () => {
  const r = await service.create(member, { name: 'race' });
  const first = service.upload(member, r.id, Readable.from([Buffer.from('abc')]));
  await expect(service.upload(member, r.id, Readable.from([Buffer.from('def')]))).rejects.toBeInstanceOf(ImageConflict);
  expect((await first).size).toBe(3);
});

it('pages newest first with a marker and rejects an unknown marker', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i += 1) ids.push((await service.create(member, { name: `i${i}` })).id);
  const p1 = service.list(member, {}, { limit: 2 });
  expect(p1.images.map((r) => r.id)).toEqual([ids[4], ids[3]]);
  const p2 = service.list(member, {}, { limit: 2, marker: p1.nextMarker });
  expect(p2.images.map((r) => r.id)).toEqual([ids[2], ids[1]]);
  const p3 = service.list(member, {}, { limit: 2, marker: p2.nextMarker });
  expect(p3).toEqual({ images: [expect.objectContaining({ id: ids[0] })] });
  expect(() => service.list(member, {}, { limit: 2, marker: '00000000-0000-4000-8000-000000000000' })).toThrow(ImageRequestRejected);
});
