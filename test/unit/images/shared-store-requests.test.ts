// What the composing store asks of a shared backend, counted on one held in memory (each chunk
// request a round trip of a few ms): a commit keeps at most the backend's putsInFlight chunk PUTs
// going and asks no HEAD of a chunk no index names; a chunk an installed index names is looked up
// and not sent again; a PUT that fails among several in flight fails the commit with nothing left
// running, the image killed and no index naming anything; a received named chunk is one PUT, and a
// named upload's commit looks each distinct chunk up once, several at a time; a verified commit
// reads its chunks back several at a time and fails on one that reads back wrong; a download reads its index's table a window at a time, a bounded number of chunks ahead, and
// stops reading when its reader goes away.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageService, UNAUTHENTICATED_ADMIN as admin, contextFor } from '../../../src/images/service';
import { encodeMap, stagedLength, type LogicalLayout } from '../../../src/images/client';
import { chunkHash } from '../../../src/images/store/chunk-store';
import { composedRawImage, diskWith, download } from './composed-fixture';
import { memoryStoreBackend, type MemoryStoreBackend } from './memory-store-backend';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

let dir: string;
let service: ImageService | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shared-store-requests-'));
});
afterEach(async () => {
  await service?.close();
  service = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function serviceOn(backend: MemoryStoreBackend, verifyAfterCommit = false): Promise<ImageService> {
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * MiB, verifyAfterCommit, sharedStore: backend });
  return service;
}

/** An image of random data staged (every chunk new), not yet committed. */
async function staged(s: ImageService, bytes: number): Promise<{ id: string; disk: Buffer }> {
  const { disk, map } = diskWith([[0, bytes]], bytes);
  const id = (await s.create(admin, { name: 'staged', disk_format: 'raw', container_format: 'bare' })).id;
  await s.resumable.open(admin, id, { size: bytes, token: 'export-1', layout: { format: 'raw', map: encodeMap(map) } });
  await s.resumable.append(admin, id, 0, Readable.from([disk]));
  return { id, disk };
}

describe('a commit on a shared backend', () => {
  it.each([1, 3, 8])('keeps at most %i chunk PUTs in flight, asks no HEAD of a new chunk, and the image downloads whole', async (putsInFlight) => {
    const backend = memoryStoreBackend({ putsInFlight, latencyMs: 40 });
    const s = await serviceOn(backend);
    const { id, disk } = await staged(s, 4 * MiB);
    backend.chunks.heads.reset();

    await s.resumable.commit(admin, id, {});

    expect(backend.chunks.puts.started).toBe(16);
    expect(backend.chunks.puts.mostAtOnce).toBe(putsInFlight);
    expect(backend.chunks.heads.started).toBe(0);
    expect(backend.chunks.objects.size).toBe(16);
    expect((await download(s, id)).equals(disk)).toBe(true);
  });

  it('looks up a chunk an installed index names instead of sending it again', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 5 });
    const s = await serviceOn(backend);
    const { disk, map } = diskWith([[0, 2 * MiB]], 2 * MiB);
    await composedRawImage(s, disk, map, 'first');
    backend.chunks.puts.reset();
    backend.chunks.heads.reset();

    const second = await composedRawImage(s, disk, map, 'second');

    expect(backend.chunks.puts.started).toBe(0);
    expect(backend.chunks.heads.started).toBe(8);
    expect((await download(s, second)).equals(disk)).toBe(true);
  });

  it('fails when one PUT among several in flight fails: the image killed, no index, no PUT left running', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 4, latencyMs: 40 });
    const s = await serviceOn(backend);
    const { id } = await staged(s, 4 * MiB);
    backend.chunks.failPut = (nth) => nth === 6;

    await expect(s.resumable.commit(admin, id, {})).rejects.toThrow();

    // Answered only once every PUT it started had ended; none started after the failure was seen.
    expect(backend.chunks.puts.running).toBe(0);
    expect(backend.chunks.puts.started).toBeLessThan(16);
    await sleep(100);
    expect(backend.chunks.puts.started).toBeLessThanOrEqual(6 + 4);
    expect(s.get(admin, id).status).toBe('killed');
    expect([...backend.indexes.objects.keys()]).toEqual([]);
  });
});

describe('a commit verified on a shared backend', () => {
  it('reads every chunk it wrote back, several at a time', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 20 });
    const s = await serviceOn(backend, true);
    const { id, disk } = await staged(s, 4 * MiB);
    // Read before the index is installed: the verification's (the checksum pass reads after activation).
    const readBack: string[] = [];
    let mostAtOnce = 0;
    backend.chunks.answer = (hex, stored) => {
      if (backend.indexes.objects.size === 0) {
        readBack.push(hex);
        mostAtOnce = Math.max(mostAtOnce, backend.chunks.gets.running);
      }
      return stored;
    };

    await s.resumable.commit(admin, id, {});

    expect(readBack.sort()).toEqual([...backend.chunks.objects.keys()].sort());
    expect(readBack).toHaveLength(16);
    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostAtOnce).toBeLessThanOrEqual(8);
    expect((await download(s, id)).equals(disk)).toBe(true);
  });

  it('fails when a chunk reads back other bytes: the image killed, no index, the chunk quarantined', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 5 });
    const s = await serviceOn(backend, true);
    const { id, disk } = await staged(s, 4 * MiB);
    const rotten = chunkHash(disk.subarray(9 * CHUNK, 10 * CHUNK)).toString('hex');
    backend.chunks.answer = (hex, stored) => (hex === rotten ? Buffer.concat([stored.subarray(0, 1).map((b) => b ^ 1), stored.subarray(1)]) : stored);

    await expect(s.resumable.commit(admin, id, {})).rejects.toThrow(`chunk ${rotten} does not hold the bytes written`);
    expect(backend.chunks.gets.running).toBe(0);
    expect(s.get(admin, id).status).toBe('killed');
    expect([...backend.indexes.objects.keys()]).toEqual([]);
    expect(backend.chunks.objects.has(rotten)).toBe(false);
  });
});

describe('a named upload on a shared backend', () => {
  const snapshotService = contextFor({ kind: 'service', projectId: 'service' });

  /** A named upload of `disk` opened, every chunk received, its names staged: ready to commit. */
  async function namedStaged(s: ImageService, disk: Buffer): Promise<{ id: string; names: string[] }> {
    const layout: LogicalLayout = { format: 'raw', map: { virtualSize: disk.length, extents: [[0, disk.length, 'd']] }, staged: 'chunk-names' };
    const id = (await s.create(snapshotService, { disk_format: 'raw', container_format: 'bare', owner: 'p1', snapshot_write_lock: 'service' })).id;
    await s.resumable.open(snapshotService, id, { size: stagedLength(layout), token: 'export-1', layout });
    const names: string[] = [];
    for (let at = 0; at < disk.length; at += CHUNK) {
      const bytes = disk.subarray(at, at + CHUNK);
      names.push(chunkHash(bytes).toString('hex'));
      if (!s.namedChunks.mayName(id, names[names.length - 1] as string)) await s.namedChunks.receive(id, names[names.length - 1] as string, Readable.from([bytes]));
    }
    await s.resumable.append(snapshotService, id, 0, Readable.from([Buffer.from(names.join(''), 'hex')]));
    return { id, names };
  }

  it('commits with one look-up per distinct chunk, several at a time, and downloads whole', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 20 });
    const s = await serviceOn(backend);
    // 16 slots, 15 distinct chunks: the last MiB's first chunk repeats the first.
    const { disk } = diskWith([[0, 4 * MiB]], 4 * MiB);
    disk.copy(disk, 3 * MiB, 0, CHUNK);
    const { id, names } = await namedStaged(s, disk);
    expect(new Set(names).size).toBe(15);
    backend.chunks.heads.reset();

    const active = await s.resumable.commit(snapshotService, id, {});

    expect(active.status).toBe('active');
    expect(backend.chunks.heads.started).toBe(15);
    expect(backend.chunks.heads.mostAtOnce).toBeGreaterThan(1);
    expect(backend.chunks.heads.mostAtOnce).toBeLessThanOrEqual(8);
    expect((await download(s, id)).equals(disk)).toBe(true);
  });

  it('refuses a commit naming a chunk gone from the store: the image killed, no index', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 5 });
    const s = await serviceOn(backend);
    const { disk } = diskWith([[0, 2 * MiB]], 2 * MiB);
    const { id, names } = await namedStaged(s, disk);
    backend.chunks.objects.delete(names[5] as string);

    await expect(s.resumable.commit(snapshotService, id, {})).rejects.toThrow(`chunk ${names[5] as string} of slot 5 is not in the store`);
    expect(s.get(admin, id).status).toBe('killed');
    expect([...backend.indexes.objects.keys()]).toEqual([]);
  });

  it('drops the window of a chunk whose PUT failed: asked again, its chunks are unknown, sent again, and the upload commits', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 5 });
    const s = await serviceOn(backend);
    const { disk } = diskWith([[0, MiB]], MiB);
    const layout: LogicalLayout = { format: 'raw', map: { virtualSize: MiB, extents: [[0, MiB, 'd']] }, staged: 'chunk-names' };
    const id = (await s.create(snapshotService, { disk_format: 'raw', container_format: 'bare', owner: 'p1', snapshot_write_lock: 'service' })).id;
    await s.resumable.open(snapshotService, id, { size: stagedLength(layout), token: 'export-1', layout });
    const chunks = [0, 1, 2, 3].map((i) => disk.subarray(i * CHUNK, (i + 1) * CHUNK));
    const names = chunks.map((c) => chunkHash(c).toString('hex'));
    backend.chunks.failPut = (nth) => nth === 2;

    await s.namedChunks.receive(id, names[0] as string, Readable.from([chunks[0]]));
    await s.namedChunks.receive(id, names[1] as string, Readable.from([chunks[1]]));
    await sleep(50);
    await expect(s.namedChunks.receive(id, names[2] as string, Readable.from([chunks[2]]))).rejects.toThrow('refused by the test');

    // The uploader's retry: asks, sends what is unknown (all of it), stages the names, commits.
    backend.chunks.failPut = () => false;
    expect(await s.namedChunks.known(id, 'p1', names)).toEqual([]);
    for (const [i, c] of chunks.entries()) await s.namedChunks.receive(id, names[i] as string, Readable.from([c]));
    await s.resumable.append(snapshotService, id, 0, Readable.from([Buffer.from(names.join(''), 'hex')]));
    expect((await s.resumable.commit(snapshotService, id, {})).status).toBe('active');
    expect((await download(s, id)).equals(disk)).toBe(true);
  });

  it('stores a received chunk with one PUT and no HEAD (its uploader was just told it is unknown)', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 5 });
    const s = await serviceOn(backend);
    const layout: LogicalLayout = { format: 'raw', map: { virtualSize: CHUNK, extents: [[0, CHUNK, 'd']] }, staged: 'chunk-names' };
    const id = (await s.create(snapshotService, { disk_format: 'raw', container_format: 'bare', owner: 'p1', snapshot_write_lock: 'service' })).id;
    await s.resumable.open(snapshotService, id, { size: stagedLength(layout), token: 'export-1', layout });
    const bytes = randomBytes(CHUNK);
    const hex = chunkHash(bytes).toString('hex');
    backend.chunks.heads.reset();

    await s.namedChunks.receive(id, hex, Readable.from([bytes]));
    await s.namedChunks.settle(id);

    expect(backend.chunks.puts.started).toBe(1);
    expect(backend.chunks.heads.started).toBe(0);
    expect(backend.chunks.objects.get(hex)?.bytes.equals(bytes)).toBe(true);
  });
});

describe('a download from a shared backend', () => {
  it('reads a bounded number of chunks ahead, and stops reading when its reader goes away', async () => {
    const backend = memoryStoreBackend({ putsInFlight: 8, latencyMs: 20 });
    const s = await serviceOn(backend);
    const { disk, map } = diskWith([[0, 32 * MiB]], 32 * MiB);
    const id = await composedRawImage(s, disk, map, 'big');
    // The checksums after activation read the image once: not this download's reads.
    await s.checksums.idle();
    backend.chunks.gets.reset();
    const indexReads = backend.indexes.reads;

    expect((await download(s, id)).equals(disk)).toBe(true);
    // The index's header (its length, then the rest), then its table in one window, not a range per 2 MiB read (16 of them).
    expect(backend.indexes.reads - indexReads).toBe(3);
    expect(backend.chunks.gets.started).toBe(128);
    expect(backend.chunks.gets.mostAtOnce).toBeGreaterThan(1);
    expect(backend.chunks.gets.mostAtOnce).toBeLessThanOrEqual(32);

    backend.chunks.gets.reset();
    const { data } = await s.openData(admin, id);
    const stream = data as Readable;
    for await (const first of stream) {
      expect((first as Buffer).length).toBeGreaterThan(0);
      break;
    }
    await sleep(200);
    expect(backend.chunks.gets.running).toBe(0);
    expect(backend.chunks.gets.started).toBeLessThanOrEqual(48);
  });
});
