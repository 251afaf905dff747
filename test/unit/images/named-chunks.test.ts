// Named uploads (protocol 2): the slots a layout names, what the service says it knows (only the
// image's own project's chunks, and what the upload sent), a chunk refused unless its bytes hash to
// its name, a table naming a chunk the upload may not use refused, and a named image that downloads
// as the disk with the digest the bytes give. Staged logical uploads are not md5/sha512-hashed.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageService, UNAUTHENTICATED_ADMIN as admin, contextFor, type RequestContext } from '../../../src/images/service';
import { CHUNK_NAME_BYTES, LOGICAL_DIGEST_PROPERTY, LogicalLayoutSchema, NAMED_CHUNK_BYTES, ZERO_CHUNK_NAME, encodeMap, namedSlots, stagedLength, type LogicalLayout } from '../../../src/images/client';
import { LOGICAL_DIGEST_ALGORITHM, logicalDigestOf, planImage } from '../../../src/qcow2';
import { diskWith, download, served } from './composed-fixture';

const KiB = 1024;
const snapshotService: RequestContext = contextFor({ kind: 'service', projectId: 'service' });

let dir: string;
let service: ImageService;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'named-chunks-'));
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 * 1024 * 1024 });
});
afterEach(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The disk's named chunks as a host names them: a name per slot the data touches, zeros named by zeros. */
function chunksOf(disk: Buffer, layout: LogicalLayout): { slot: number; name: string; bytes: Buffer | null }[] {
  return namedSlots(layout).map((slot) => {
    const bytes = disk.subarray(slot * NAMED_CHUNK_BYTES, Math.min(disk.length, (slot + 1) * NAMED_CHUNK_BYTES));
    return bytes.every((b) => b === 0) ? { slot, name: ZERO_CHUNK_NAME.toString('hex'), bytes: null } : { slot, name: sha(bytes), bytes };
  });
}

async function openNamed(owner: string, layout: LogicalLayout): Promise<string> {
  const id = (await service.create(snapshotService, { disk_format: 'qcow2', container_format: 'bare', owner, snapshot_write_lock: 'service' })).id;
  await service.resumable.open(snapshotService, id, { size: stagedLength(layout), token: 'export-1', layout });
  return id;
}

/** The host's side of a named upload: ask, send the unknown, stage the names, commit. */
async function namedUpload(owner: string, disk: Buffer, layout: LogicalLayout): Promise<{ id: string; sentBytes: number }> {
  const id = await openNamed(owner, layout);
  const chunks = chunksOf(disk, layout);
  const names = [...new Set(chunks.filter((c) => c.bytes !== null).map((c) => c.name))];
  const known = new Set(await service.namedChunks.known(id, owner, names));
  let sentBytes = 0;
  for (const c of chunks) {
    if (c.bytes === null || known.has(c.name)) continue;
    await service.namedChunks.receive(id, c.name, Readable.from([c.bytes]));
    known.add(c.name);
    sentBytes += c.bytes.length;
  }
  const staged = Buffer.concat(chunks.map((c) => Buffer.from(c.name, 'hex')));
  await service.resumable.append(snapshotService, id, 0, Readable.from([staged]));
  const digest = `${LOGICAL_DIGEST_ALGORITHM}:${await logicalDigestOf([disk], disk.length)}`;
  const active = await service.resumable.commit(snapshotService, id, { properties: { [LOGICAL_DIGEST_PROPERTY]: digest } });
  expect(active.status).toBe('active');
  return { id, sentBytes };
}

describe('the named slots of a layout', () => {
  it('are every chunk slot a data extent touches, once, ascending; the staged length is a name each', () => {
    const layout: LogicalLayout = {
      format: 'raw',
      map: { virtualSize: 1024 * KiB + 512, extents: [[0, 4 * KiB, 'd'], [4 * KiB, 252 * KiB, 'h'], [256 * KiB, 8 * KiB, 'd'], [264 * KiB, 1 * KiB, 'd'], [265 * KiB, 759 * KiB, 'z'], [1024 * KiB, 512, 'd']] },
      staged: 'chunk-names',
    };
    expect(namedSlots(layout)).toEqual([0, 1, 4]);
    expect(stagedLength(layout)).toBe(3 * CHUNK_NAME_BYTES);
    expect(stagedLength({ ...layout, staged: undefined })).toBe(4 * KiB + 9 * KiB + 512);
    expect(LogicalLayoutSchema.safeParse({ ...layout, parent: '6f0e6a9e-2d59-4d0b-8a43-2a8f9e0c1b11', changed: [[0, 512]] }).success).toBe(false);
  });
});

describe('a named upload', () => {
  it('of a second image of the same disk sends only the chunks that differ, and downloads as the disk', async () => {
    const { disk, map } = diskWith([[0, 3 * NAMED_CHUNK_BYTES], [5 * NAMED_CHUNK_BYTES, 100 * KiB]], 8 * NAMED_CHUNK_BYTES);
    const layout: LogicalLayout = { format: 'qcow2', map: encodeMap(map), staged: 'chunk-names' };
    const first = await namedUpload('p1', disk, layout);
    // Whole chunks travel: the last one's 100 KiB of data with its zeros.
    expect(first.sentBytes).toBe(4 * NAMED_CHUNK_BYTES);
    const second = Buffer.from(disk);
    second.fill(7, NAMED_CHUNK_BYTES, NAMED_CHUNK_BYTES + 10);
    const again = await namedUpload('p1', second, layout);
    expect(again.sentBytes).toBe(NAMED_CHUNK_BYTES);
    expect((await download(service, again.id)).equals(await served(planImage(map, { format: 'qcow2' }), second))).toBe(true);
    // Another project is told of none of p1's chunks, and sends them all.
    const other = await namedUpload('p2', disk, layout);
    expect(other.sentBytes).toBe(first.sentBytes);
    expect((await download(service, other.id)).equals(await served(planImage(map, { format: 'qcow2' }), disk))).toBe(true);
  });

  it('refuses a chunk whose bytes do not hash to its name, and stores nothing of it', async () => {
    const { disk, map } = diskWith([[0, NAMED_CHUNK_BYTES]], 2 * NAMED_CHUNK_BYTES);
    const id = await openNamed('p1', { format: 'raw', map: encodeMap(map), staged: 'chunk-names' });
    const bytes = disk.subarray(0, NAMED_CHUNK_BYTES);
    const wrong = sha(Buffer.concat([bytes, Buffer.from('x')]));
    await expect(service.namedChunks.receive(id, wrong, Readable.from([bytes]))).rejects.toMatchObject({ status: 400 });
    expect(await readdir(join(dir, 'chunks'))).toEqual([]);
    expect(service.namedChunks.mayName(id, wrong)).toBe(false);
    await expect(service.namedChunks.receive(id, sha(bytes), Readable.from([Buffer.concat([bytes, Buffer.alloc(1)])]))).rejects.toMatchObject({ status: 413 });
  });

  it('kills an image whose names include a chunk it neither sent nor was told of (another project’s), and keeps that chunk', async () => {
    const { disk, map } = diskWith([[0, NAMED_CHUNK_BYTES]], 2 * NAMED_CHUNK_BYTES);
    const layout: LogicalLayout = { format: 'raw', map: encodeMap(map), staged: 'chunk-names' };
    await namedUpload('p1', disk, layout);
    const id = await openNamed('p2', layout);
    const name = sha(disk.subarray(0, NAMED_CHUNK_BYTES));
    await service.resumable.append(snapshotService, id, 0, Readable.from([Buffer.from(name, 'hex')]));
    await expect(service.resumable.commit(snapshotService, id, {})).rejects.toMatchObject({ status: 400, message: expect.stringContaining('neither sent nor was told') as unknown });
    expect(service.get(admin, id).status).toBe('killed');
    expect(await service.chunkStats()).toMatchObject({ chunks: 1 });
  });

  it('takes no md5 or sha512 of staged bytes at commit (they are not the image)', async () => {
    const { map } = diskWith([], 2 * NAMED_CHUNK_BYTES);
    const id = await openNamed('p1', { format: 'raw', map: encodeMap(map), staged: 'chunk-names' });
    await expect(service.resumable.commit(snapshotService, id, { md5: 'a'.repeat(32) })).rejects.toMatchObject({ status: 400 });
    expect(service.get(admin, id).status).toBe('uploading');
  });

  it('keeps what it was sent or told across a restart, before the first collection', async () => {
    const { disk, map } = diskWith([[0, 2 * NAMED_CHUNK_BYTES]], 2 * NAMED_CHUNK_BYTES);
    const layout: LogicalLayout = { format: 'raw', map: encodeMap(map), staged: 'chunk-names' };
    const id = await openNamed('p1', layout);
    const chunks = chunksOf(disk, layout);
    for (const c of chunks) await service.namedChunks.receive(id, c.name, Readable.from([c.bytes as Buffer]));
    await service.close();
    service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 * 1024 * 1024 });
    expect(service.recovery.removedChunks).toBe(0);
    await service.resumable.append(snapshotService, id, 0, Readable.from([Buffer.concat(chunks.map((c) => Buffer.from(c.name, 'hex')))]));
    await service.resumable.commit(snapshotService, id, {});
    expect((await download(service, id)).equals(disk)).toBe(true);
  });
});

describe('received chunks made durable together', () => {
  const chunkFiles = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const sub of await readdir(join(dir, 'chunks')).catch(() => [])) out.push(...(await readdir(join(dir, 'chunks', sub))));
    return out.sort();
  };
  const namesFile = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const f of (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('.names'))) {
      const bytes = await readFile(join(dir, f));
      for (let at = 0; at < bytes.length; at += CHUNK_NAME_BYTES) out.push(bytes.subarray(at, at + CHUNK_NAME_BYTES).toString('hex'));
    }
    return out.sort();
  };

  it('are the upload’s at once, and under their names and in the session’s names file only once the next append of names begins', async () => {
    const { disk, map } = diskWith([[0, 2 * NAMED_CHUNK_BYTES]], 2 * NAMED_CHUNK_BYTES);
    const layout: LogicalLayout = { format: 'raw', map: encodeMap(map), staged: 'chunk-names' };
    const id = await openNamed('p1', layout);
    const chunks = chunksOf(disk, layout);
    const names = chunks.map((c) => c.name);
    for (const c of chunks) await service.namedChunks.receive(id, c.name, Readable.from([c.bytes as Buffer]));
    expect((await chunkFiles()).every((f) => f.endsWith('.tmp'))).toBe(true);
    expect(await namesFile()).toEqual([]);
    expect((await service.namedChunks.known(id, 'p1', names)).sort()).toEqual([...names].sort());
    await service.resumable.append(snapshotService, id, 0, Readable.from([Buffer.concat(names.map((n) => Buffer.from(n, 'hex')))]));
    expect(await chunkFiles()).toEqual([...names].sort());
    expect(await namesFile()).toEqual([...names].sort());
    await service.resumable.commit(snapshotService, id, {});
    expect((await download(service, id)).equals(disk)).toBe(true);
  });

  it('take a name sent twice at once once, and leave no temporary file when the session goes unsettled', async () => {
    const { disk, map } = diskWith([[0, NAMED_CHUNK_BYTES]], 2 * NAMED_CHUNK_BYTES);
    const layout: LogicalLayout = { format: 'raw', map: encodeMap(map), staged: 'chunk-names' };
    const id = await openNamed('p1', layout);
    const [chunk] = chunksOf(disk, layout);
    const bytes = chunk?.bytes as Buffer;
    const name = chunk?.name as string;
    await Promise.all([service.namedChunks.receive(id, name, Readable.from([bytes])), service.namedChunks.receive(id, name, Readable.from([bytes]))]);
    expect(await chunkFiles()).toHaveLength(1);
    await service.resumable.discard(snapshotService, id);
    for (let i = 0; i < 50 && (await chunkFiles()).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await chunkFiles()).toEqual([]);
    expect(service.namedChunks.mayName(id, name)).toBe(false);
  });
});
