// The composing store: logical uploads (full, and incremental over a parent) become chunks plus an
// index; every download is the whole image the host's writer would have made of that disk; the
// digests Glance's API reports are the served bytes'; deleting an image never breaks another; and a
// restart in the middle of a commit or a collection loses nothing and leaks nothing.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { LOGICAL_DIGEST_PROPERTY, encodeMap, piecesLength, sentPieces, type LogicalLayout } from '../../../src/images/client';
import { LOGICAL_DIGEST_ALGORITHM, logicalDigestOf, planImage } from '../../../src/qcow2';
import { diskWith, download, served, stage } from './composed-fixture';

const KiB = 1024;
const MiB = 1024 * KiB;

let dir: string;
let service: ImageService | undefined;

const open = async (): Promise<ImageService> => {
  await service?.close();
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * MiB });
  return service;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'composed-images-'));
  service = undefined;
});
afterEach(async () => {
  await service?.close();
  await rm(dir, { recursive: true, force: true });
});

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const digestOf = async (disk: Buffer): Promise<string> => `${LOGICAL_DIGEST_ALGORITHM}:${await logicalDigestOf([disk], disk.length)}`;

describe('the composing store', () => {
  it('serves a full upload as the writer’s image, with the served bytes’ digests and the disk’s logical digest', async () => {
    const s = await open();
    const { disk, map } = diskWith([[0, 300 * KiB], [2 * MiB + 4 * KiB, 1 * MiB]]);
    const id = (await s.create(admin, { name: 'full', disk_format: 'qcow2', container_format: 'bare' })).id;
    const layout: LogicalLayout = { format: 'qcow2', map: encodeMap(map) };
    await stage(s, id, layout, disk);
    const active = await s.resumable.commit(admin, id, {});
    const expected = await served(planImage(map, { format: 'qcow2' }), disk);
    const got = await download(s, id);
    expect(got.equals(expected)).toBe(true);
    // Active at once, its md5 and sha512 computed after (as Glance's images added by location).
    expect(active).toMatchObject({ status: 'active', size: expected.length, checksum: null });
    await s.checksums.idle();
    expect(s.get(admin, id)).toMatchObject({ status: 'active', size: expected.length, checksum: md5(expected) });
    expect(active.properties[LOGICAL_DIGEST_PROPERTY]).toBe(await digestOf(disk));
    // Only the data's chunks are stored: 300 KiB → two 256 KiB chunks, 1 MiB unaligned → five.
    expect((await s.chunkStats()).chunks).toBe(7);
  });

  it('composes an incremental over its parent from the changed extents only, and the store grows by their chunks', async () => {
    const s = await open();
    const { disk, map } = diskWith([[0, 4 * MiB]]);
    const parent = (await s.create(admin, { name: 'p' })).id;
    await stage(s, parent, { format: 'raw', map: encodeMap(map) }, disk);
    await s.resumable.commit(admin, parent, {});
    const before = await s.chunkStats();

    const next = Buffer.from(disk);
    randomBytes(64 * KiB).copy(next, 1 * MiB + 128 * KiB);
    next.fill(0, 3 * MiB, 3 * MiB + 256 * KiB); // the guest zeroed a range: still data to the map
    const changed: [number, number][] = [[1 * MiB + 128 * KiB, 64 * KiB], [3 * MiB, 256 * KiB]];
    const layout: LogicalLayout = { format: 'raw', map: encodeMap(map), parent, changed };
    expect(piecesLength(sentPieces(layout))).toBe(320 * KiB);
    const child = (await s.create(admin, { name: 'c' })).id;
    await stage(s, child, layout, next);
    const active = await s.resumable.commit(admin, child, {});
    expect((await download(s, child)).equals(next)).toBe(true);
    expect(active.properties[LOGICAL_DIGEST_PROPERTY]).toBe(await digestOf(next));
    const after = await s.chunkStats();
    // One new chunk for the 64 KiB write; the zeroed chunk is not stored at all.
    expect(after.chunks - before.chunks).toBe(1);
    expect(after.bytes - before.bytes).toBe(256 * KiB);
    expect((await download(s, parent)).equals(disk)).toBe(true);
  });

  it('an incremental where the guest discarded whole blocks: those read as zeros, and no chunk is written for them', async () => {
    const s = await open();
    const { disk, map } = diskWith([[0, 4 * MiB]]);
    const parent = (await s.create(admin, { name: 'p' })).id;
    await stage(s, parent, { format: 'raw', map: encodeMap(map) }, disk);
    await s.resumable.commit(admin, parent, {});
    const before = await s.chunkStats();
    // Discarded [1 MiB, 3 MiB) and [3.5 MiB, 3.75 MiB): holes now, inside the changed ranges.
    const next = Buffer.from(disk);
    next.fill(0, 1 * MiB, 3 * MiB);
    next.fill(0, 3.5 * MiB, 3.75 * MiB);
    const now = { virtualSize: map.virtualSize, extents: [{ offset: 0, length: MiB, kind: 'data' as const }, { offset: MiB, length: 2 * MiB, kind: 'hole' as const }, { offset: 3 * MiB, length: 0.5 * MiB, kind: 'data' as const }, { offset: 3.5 * MiB, length: 0.25 * MiB, kind: 'hole' as const }, { offset: 3.75 * MiB, length: map.virtualSize - 3.75 * MiB, kind: 'data' as const }] };
    const layout: LogicalLayout = { format: 'raw', map: encodeMap(now), parent, changed: [[MiB, 2 * MiB], [3.5 * MiB, 0.25 * MiB]] };
    expect(piecesLength(sentPieces(layout))).toBe(0);
    const child = (await s.create(admin, { name: 'c' })).id;
    await stage(s, child, layout, next);
    const active = await s.resumable.commit(admin, child, {});
    expect((await download(s, child)).equals(next)).toBe(true);
    expect(active.properties[LOGICAL_DIGEST_PROPERTY]).toBe(await digestOf(next));
    expect(await s.chunkStats()).toEqual(before);
  });

  it('deleting the parent never breaks the child; chunks only the parent held are collected', async () => {
    const s = await open();
    const { disk, map } = diskWith([[0, 2 * MiB]]);
    const parent = (await s.create(admin, { name: 'p' })).id;
    await stage(s, parent, { format: 'raw', map: encodeMap(map) }, disk);
    await s.resumable.commit(admin, parent, {});
    const next = Buffer.from(disk);
    randomBytes(256 * KiB).copy(next, 0);
    const child = (await s.create(admin, { name: 'c' })).id;
    await stage(s, child, { format: 'raw', map: encodeMap(map), parent, changed: [[0, 256 * KiB]] }, next);
    await s.resumable.commit(admin, child, {});
    expect((await s.chunkStats()).chunks).toBe(9);

    await s.delete(admin, parent);
    expect((await s.chunkStats()).chunks).toBe(8);
    expect((await download(s, child)).equals(next)).toBe(true);
    await s.delete(admin, child);
    expect(await s.chunkStats()).toEqual({ chunks: 0, bytes: 0 });
  });

  it('refuses a layout whose size is not what it sends, or a parent that is not active, and changes nothing', async () => {
    const s = await open();
    const { map } = diskWith([[0, MiB]]);
    const id = (await s.create(admin, { name: 'x' })).id;
    await expect(s.resumable.open(admin, id, { size: 5, token: 't', layout: { format: 'raw', map: encodeMap(map) } })).rejects.toMatchObject({ status: 400 });
    const queued = (await s.create(admin, { name: 'q' })).id;
    const layout = { format: 'raw', map: encodeMap(map), parent: queued, changed: [[0, 4096]] };
    await expect(s.resumable.open(admin, id, { size: 4096, token: 't', layout })).rejects.toMatchObject({ status: 409 });
    await expect(s.resumable.open(admin, id, { size: 0, token: 't', layout: { format: 'raw', map: { virtualSize: 10, extents: [[0, 4, 'd']] } } })).rejects.toMatchObject({ status: 400 });
    expect(s.get(admin, id).status).toBe('queued');
  });
});

describe('a restart in the middle of a commit or a collection', () => {
  it('a commit cut after its chunks (and index) were written: the image stays resumable, the orphans go, the next commit is whole', async () => {
    const first = await open();
    const { disk, map } = diskWith([[0, 2 * MiB]]);
    const id = (await first.create(admin, { name: 'cut' })).id;
    const layout: LogicalLayout = { format: 'qcow2', map: encodeMap(map) };
    await stage(first, id, layout, disk);
    // What a crash between the chunk writes and the record turning active leaves: chunks named,
    // an index of an image still uploading, a chunk's temporary file.
    const orphan = createHash('sha256').update('orphan').digest('hex');
    await mkdir(join(dir, 'chunks', orphan.slice(0, 2)), { recursive: true });
    await writeFile(join(dir, 'chunks', orphan.slice(0, 2), orphan), 'orphan');
    await writeFile(join(dir, 'chunks', orphan.slice(0, 2), `${orphan}.abc.tmp`), 'half');
    await writeFile(join(dir, 'indexes', `${id}.idx`), 'SNAPIDX1\n torn');

    const second = await open();
    expect(second.recovery.resumedUploadIds).toEqual([id]);
    expect(second.recovery.removedChunks).toBe(1);
    expect(await readdir(join(dir, 'indexes'))).toEqual([]);
    expect(await readdir(join(dir, 'chunks', orphan.slice(0, 2)))).toEqual([]);
    await second.resumable.commit(admin, id, {});
    expect((await download(second, id)).equals(await served(planImage(map, { format: 'qcow2' }), disk))).toBe(true);
  });

  it('a deletion cut before its collection: the next start removes the index and the chunks, and keeps the others', async () => {
    const first = await open();
    const a = diskWith([[0, MiB]]);
    const b = diskWith([[0, MiB]]);
    const keep = (await first.create(admin, { name: 'keep' })).id;
    await stage(first, keep, { format: 'raw', map: encodeMap(a.map) }, a.disk);
    await first.resumable.commit(admin, keep, {});
    const gone = (await first.create(admin, { name: 'gone' })).id;
    await stage(first, gone, { format: 'raw', map: encodeMap(b.map) }, b.disk);
    await first.resumable.commit(admin, gone, {});
    expect((await first.chunkStats()).chunks).toBe(8);
    // The record says deleted, the collection never ran: as if the process died right there.
    const records = join(dir, 'records', `${gone}.json`);
    const rec = JSON.parse(await readFile(records, 'utf8')) as Record<string, unknown>;
    await first.close();
    service = undefined;
    await writeFile(records, JSON.stringify({ ...rec, status: 'deleted' }));

    const second = await open();
    expect(second.recovery.removedIndexIds).toEqual([gone]);
    expect(second.recovery.removedChunks).toBe(4);
    expect((await download(second, keep)).equals(a.disk)).toBe(true);
  });
});
