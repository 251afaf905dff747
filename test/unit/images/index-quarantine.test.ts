// An index the service cannot read (corrupt, or the 2.5 GiB index of the 16 TiB attack, which Node
// cannot readFile) is quarantined and reported, its image killed; it never stops a delete, a
// collection or a start. And no tenant's commit holds a lock the others wait on: another image's
// commit and delete finish while a long commit runs, and a parent deleted under an incremental's
// commit leaves the new image whole.
import { mkdtemp, open as openFile, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { LOGICAL_DIGEST_PROPERTY, encodeMap, sentPieces, type LogicalLayout } from '../../../src/images/client';
import { LOGICAL_DIGEST_ALGORITHM, LogicalDigest, emit, planImage, type AllocationMap, type Extent } from '../../../src/qcow2';
import { ImageIndexes } from '../../../src/images/store/image-index';
import { IndexWriter } from '../../../src/images/store/index-writer';
import { diskWith, download, stage } from './composed-fixture';

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;

let dir: string;
let service: ImageService | undefined;
let warnings: string[];

const open = async (maxImageBytes = 1 * TiB): Promise<ImageService> => {
  await service?.close();
  service = await ImageService.open({ dataDir: dir, maxImageBytes, warn: (details, message) => warnings.push(`${message} ${JSON.stringify(details)}`) });
  return service;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'index-quarantine-'));
  service = undefined;
  warnings = [];
});
afterEach(async () => {
  await service?.close();
  await rm(dir, { recursive: true, force: true });
});

/** An active composed image of random data over its first `data` bytes. */
async function composed(s: ImageService, name: string, data = 2 * MiB): Promise<{ id: string; disk: Buffer }> {
  const { disk, map } = diskWith([[0, data]]);
  const id = (await s.create(admin, { name })).id;
  await stage(s, id, { format: 'raw', map: encodeMap(map) }, disk);
  await s.resumable.commit(admin, id, {});
  return { id, disk };
}

const indexPath = (id: string): string => join(dir, 'indexes', `${id}.idx`);
const quarantined = async (): Promise<string[]> => readdir(join(dir, 'quarantine', 'indexes')).catch(() => []);

/**
 * What the attack left before this fix: the index of a 16 TiB disk of holes, whole and consistent
 * (2.5 GiB, sparse here), over an image that is active.
 */
async function inflate(id: string): Promise<void> {
  const bytes = await readFile(indexPath(id));
  const length = bytes.readUInt32BE(9);
  const header = JSON.parse(bytes.subarray(13, 13 + length).toString('utf8')) as Record<string, unknown>;
  const virtualSize = 16 * TiB;
  const text = Buffer.from(JSON.stringify({ ...header, format: 'qcow2', virtualSize, map: { virtualSize, extents: [[0, virtualSize, 'h']] } }));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(text.length);
  await writeFile(indexPath(id), Buffer.concat([bytes.subarray(0, 9), prefix, text]));
  await truncate(indexPath(id), 13 + text.length + (virtualSize / (256 * 1024) + virtualSize / MiB) * 32);
}

describe('an index that cannot be read', () => {
  it('the attack’s 2.5 GiB index: the service starts, quarantines it, kills its image, and serves and deletes the others', async () => {
    const first = await open();
    const attack = await composed(first, 'attack');
    const other = await composed(first, 'other');
    await first.close();
    service = undefined;
    await inflate(attack.id);

    const second = await open();
    expect(second.get(admin, attack.id).status).toBe('killed');
    expect(await quarantined()).toEqual([expect.stringMatching(new RegExp(`^${attack.id}\\.\\d+\\.idx$`))]);
    expect(warnings.some((w) => w.includes('quarantined') && w.includes(attack.id))).toBe(true);
    expect((await download(second, other.id)).equals(other.disk)).toBe(true);
    await second.delete(admin, other.id);
    expect(await second.chunkStats()).toEqual({ chunks: 0, bytes: 0 });
  });

  it('a corrupt index never stops another image’s delete or its collection; a download of it answers no data', async () => {
    const s = await open();
    const broken = await composed(s, 'broken');
    const other = await composed(s, 'other');
    const third = await composed(s, 'third');
    await writeFile(indexPath(broken.id), Buffer.concat([Buffer.from('SNAPIDX1\n'), randomBytes(200)]));

    await s.delete(admin, other.id);
    // A delete reads its own index only: the store's repair pass is what reads the broken one.
    expect(s.get(admin, broken.id).status).toBe('active');
    await s.collectChunks();
    expect(s.get(admin, broken.id).status).toBe('killed');
    expect(await quarantined()).toHaveLength(1);
    // Only the third image's chunks are left: the broken one's went with its index.
    expect((await s.chunkStats()).chunks).toBe(8);
    expect((await download(s, third.id)).equals(third.disk)).toBe(true);

    await writeFile(indexPath(third.id), 'SNAPIDX1\n torn');
    expect(await s.openData(admin, third.id)).toMatchObject({ record: { status: 'killed' }, data: null });
    expect(await quarantined()).toHaveLength(2);
  });

  it('an index header longer than any layout the cap allows is quarantined before it is read', async () => {
    const s = await open(64 * MiB);
    const { id } = await composed(s, 'long');
    const handle = await openFile(indexPath(id), 'r+');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(0xfffffff0);
    await handle.write(length, 0, 4, 9);
    await handle.close();
    const restarted = await open(64 * MiB);
    expect(restarted.get(admin, id).status).toBe('killed');
    expect(await quarantined()).toHaveLength(1);
  });
});

describe('no lock spans tenants', () => {
  it('while the service hashes one tenant’s large raw image (its checksums after activation), another image’s commit and a delete finish first', async () => {
    const s = await open(4096 * MiB);
    const doomed = await composed(s, 'doomed');
    const big = (await s.create(admin, { name: 'big' })).id;
    const layout: LogicalLayout = { format: 'raw', map: { virtualSize: 512 * MiB, extents: [[0, 512 * MiB, 'h']] } };
    await s.resumable.open(admin, big, { size: 0, token: 't', layout });
    const small = diskWith([[0, MiB]]);
    const quick = (await s.create(admin, { name: 'quick' })).id;
    await stage(s, quick, { format: 'raw', map: encodeMap(small.map) }, small.disk);

    const finished: string[] = [];
    const long = s.resumable.commit(admin, big, {}).then(async () => {
      await s.checksums.idle();
      finished.push('big');
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await Promise.all([s.resumable.commit(admin, quick, {}).then(() => finished.push('quick')), s.delete(admin, doomed.id).then(() => finished.push('delete'))]);
    await long;
    expect(finished).toEqual([expect.stringMatching(/quick|delete/), expect.stringMatching(/quick|delete/), 'big']);
    expect((await download(s, quick)).equals(small.disk)).toBe(true);
  }, 120_000);

  it('a parent deleted while an incremental composes on it: the new image is whole', async () => {
    const s = await open(4096 * MiB);
    const size = 128 * MiB;
    const base = diskWith([[0, 4 * MiB]], size);
    const parent = (await s.create(admin, { name: 'p' })).id;
    await stage(s, parent, { format: 'raw', map: encodeMap(base.map) }, base.disk);
    await s.resumable.commit(admin, parent, {});
    const next = Buffer.from(base.disk);
    randomBytes(MiB).copy(next, 2 * MiB);
    const child = (await s.create(admin, { name: 'c' })).id;
    await stage(s, child, { format: 'raw', map: encodeMap(base.map), parent, changed: [[2 * MiB, MiB]] }, next);

    // The delete comes right after the commit request, before the commit's first await: the
    // request holds the parent from the start, however slowly the commit gets going.
    const committing = s.resumable.commit(admin, child, {});
    await s.delete(admin, parent);
    await committing;
    await s.collectChunks();
    expect((await download(s, child)).equals(next)).toBe(true);
  }, 120_000);

  it('a collection listing the indexes while a commit writes one leaves that commit’s temp file alone', async () => {
    const indexes = await ImageIndexes.open({ dir: join(dir, 'idx'), quarantineDir: join(dir, 'q'), maxImageBytes: 1 * TiB, onQuarantine: async () => undefined });
    const virtualSize = 1 * TiB;
    const header = { virtualSize, chunkBytes: 256 * 1024, format: 'qcow2' as const, map: { virtualSize, extents: [[0, virtualSize, 'h']] as [number, number, 'h'][] }, parent: null };
    const id = '4b3f7c8e-35a5-4a8e-9d7f-2f1e4f9d6c11';
    const temp = indexes.claimTemp(id);
    const writer = await IndexWriter.create(temp, header, null);
    expect(await indexes.ids()).toEqual([]);
    expect(await readdir(join(dir, 'idx'))).toEqual([basename(temp)]);
    await writer.finishTables();
    await writer.seal({ size: 12345 });
    await indexes.install(id, temp);
    indexes.releaseTemp(id);
    expect(await indexes.ids()).toEqual([id]);
    // Written a window at a time: the whole 160 MiB of tables of a 1 TiB disk, and the header in place.
    expect(await indexes.header(id)).toMatchObject({ virtualSize, size: 12345 });
  });
});

describe('an index written before the 256 KiB digest', () => {
  it('(no digest in its header, a 1 MiB block table after its chunks) is still read and served, not quarantined', async () => {
    const s = await open();
    const { disk, map } = diskWith([[0, 3 * MiB]], 4 * MiB);
    const id = (await s.create(admin, { disk_format: 'qcow2', container_format: 'bare' })).id;
    await stage(s, id, { format: 'qcow2', map: encodeMap(map) }, disk);
    const active = await s.resumable.commit(admin, id, {});
    // The first service's background checksum pass reads the index: done before the index is rewritten under it.
    await s.checksums.idle();
    const path = join(dir, 'indexes', `${id}.idx`);
    const file = await readFile(path);
    const headerLength = file.readUInt32BE(9);
    const header = JSON.parse(file.subarray(13, 13 + headerLength).toString('utf8')) as Record<string, unknown>;
    expect(header['digest']).toBe(LOGICAL_DIGEST_ALGORITHM);
    delete header['digest'];
    const json = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(13);
    file.copy(prefix, 0, 0, 9);
    prefix.writeUInt32BE(json.length, 9);
    // The old layout: the chunk table, then one SHA-256 per 1 MiB block.
    await writeFile(path, Buffer.concat([prefix, json, file.subarray(13 + headerLength), Buffer.alloc(4 * 32, 7)]));
    const reopened = await open();
    expect(reopened.get(admin, id).status).toBe('active');
    const bytes = await download(reopened, id);
    expect(bytes.length).toBe(active.size);
    await reopened.checksums.idle();
    expect(createHash('md5').update(bytes).digest('hex')).toBe(reopened.get(admin, active.id).checksum);
    expect(warnings.filter((w) => w.includes('quarantined'))).toEqual([]);
  });
});

describe('a commit’s memory follows its windows, not the disk', () => {
  it('a 1 TiB disk of holes commits holding far less than its 160 MiB of tables', async () => {
    const s = await open(1 * TiB);
    const id = (await s.create(admin, { name: 'holes' })).id;
    await s.resumable.open(admin, id, { size: 0, token: 't', layout: { format: 'qcow2', map: { virtualSize: 1 * TiB, extents: [[0, 1 * TiB, 'h']] } } });
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)), 2);
    try {
      expect(await s.resumable.commit(admin, id, {})).toMatchObject({ status: 'active' });
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeLessThan(48 * MiB);
    expect((await s.openData(admin, id)).data).not.toBeNull();
  }, 120_000);

  it('a disk whose tables span many windows (20 GiB): full and incremental compose, digest and serve as the writer lays them out', async () => {
    const s = await open(64 * 1024 * MiB);
    const size = 20 * 1024 * MiB;
    const at = [0, 8 * 1024 * MiB - 512 * 1024, size - MiB];
    const data = new Map(at.map((offset) => [offset, randomBytes(MiB)]));
    const mapOf = (chunks: Map<number, Buffer>): AllocationMap => {
      const extents: Extent[] = [];
      let end = 0;
      for (const [offset, bytes] of chunks) {
        if (offset > end) extents.push({ offset: end, length: offset - end, kind: 'hole' });
        extents.push({ offset, length: bytes.length, kind: 'data' });
        end = offset + bytes.length;
      }
      if (end < size) extents.push({ offset: end, length: size - end, kind: 'hole' });
      return { virtualSize: size, extents };
    };
    const read = (chunks: Map<number, Buffer>) => (offset: number, length: number): Buffer => {
      const out = Buffer.alloc(length);
      for (const [o, b] of chunks) if (o < offset + length && o + b.length > offset) b.copy(out, Math.max(0, o - offset), Math.max(0, offset - o), Math.min(b.length, offset + length - o));
      return out;
    };
    const digestOf = (chunks: Map<number, Buffer>): string => {
      const d = new LogicalDigest(size);
      for (const [o, b] of chunks) d.update(o, b);
      return `${LOGICAL_DIGEST_ALGORITHM}:${d.digest()}`;
    };
    const expectServed = async (id: string, chunks: Map<number, Buffer>): Promise<void> => {
      const hash = createHash('md5');
      for await (const b of emit(planImage(mapOf(chunks), { format: 'qcow2' }), read(chunks))) hash.update(b);
      await s.checksums.idle();
      expect(s.get(admin, id).checksum).toBe(hash.digest('hex'));
      const got = createHash('md5');
      for await (const b of (await s.openData(admin, id)).data ?? []) got.update(b as Buffer);
      expect(got.digest('hex')).toBe(s.get(admin, id).checksum);
    };
    const stageFrom = async (id: string, layout: LogicalLayout, chunks: Map<number, Buffer>): Promise<void> => {
      const body = Buffer.concat(sentPieces(layout).map((p) => read(chunks)(p.offset, p.length)));
      await s.resumable.open(admin, id, { size: body.length, token: 't', layout });
      await s.resumable.append(admin, id, 0, Readable.from([body]));
    };

    const parent = (await s.create(admin, { name: 'p' })).id;
    await stageFrom(parent, { format: 'qcow2', map: encodeMap(mapOf(data)) }, data);
    await s.resumable.commit(admin, parent, { properties: { [LOGICAL_DIGEST_PROPERTY]: digestOf(data) } });
    await expectServed(parent, data);

    const next = new Map(data);
    next.set(at[1] as number, randomBytes(MiB));
    const child = (await s.create(admin, { name: 'c' })).id;
    await stageFrom(child, { format: 'qcow2', map: encodeMap(mapOf(next)), parent, changed: [[at[1] as number, MiB]] }, next);
    const active = await s.resumable.commit(admin, child, {});
    expect(active.properties[LOGICAL_DIGEST_PROPERTY]).toBe(digestOf(next));
    await expectServed(child, next);
  }, 120_000);
});
