// A kill -9 of the standalone image service in the middle of its deletes' garbage collection: the
// first deleted image's index is gone (its chunks being reclaimed) while the others wait their
// turn. After the restart every image still active downloads whole and hashes to its checksum, the
// start's repair reclaims what the killed process left, the chunks on disk are exactly those the
// live images name, and deleting the rest empties the store.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GlanceHttpClient, ImageNotFound, encodeMap } from '../../../src/images/client';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { composedRawImage, stage } from '../../unit/images/composed-fixture';
import { exited, killAll, startServerProcess } from '../../support/image-server-process';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const DISK = 8 * MiB;
const MAX_BYTES = 64 * MiB;

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'store-gc-crash-'));
});
afterEach(async () => {
  await killAll(children);
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

function chunksOf(disk: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < disk.length; at += CHUNK) out.push(sha256(disk.subarray(at, at + CHUNK)));
  return out;
}

async function chunkFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(join(dir, 'chunks'))) out.push(...(await readdir(join(dir, 'chunks', sub))));
  return out.sort();
}

async function downloaded(client: GlanceHttpClient, id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of await client.download(id)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/**
 * Six raw images of 8 MiB sharing their first 4 MiB (16 chunks) and each with 16 chunks of its own,
 * and an incremental child of the first with one chunk changed: made through the store's own API.
 */
async function fill(): Promise<Map<string, Buffer>> {
  const service = await ImageService.open({ dataDir: dir, maxImageBytes: MAX_BYTES });
  try {
    const base = randomBytes(DISK / 2);
    const map = { virtualSize: DISK, extents: [{ offset: 0, length: DISK, kind: 'data' as const }] };
    const disks = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) {
      const disk = Buffer.concat([base, randomBytes(DISK / 2)]);
      disks.set(await composedRawImage(service, disk, map, `image-${i}`), disk);
    }
    const [parentId, parentDisk] = [...disks][0]!;
    const next = Buffer.from(parentDisk);
    randomBytes(CHUNK).copy(next, DISK - CHUNK);
    const child = (await service.create(admin, { name: 'child', disk_format: 'raw', container_format: 'bare' })).id;
    await stage(service, child, { format: 'raw', map: encodeMap(map), parent: parentId, changed: [[DISK - CHUNK, CHUNK]] }, next);
    await service.resumable.commit(admin, child, {});
    disks.set(child, next);
    return disks;
  } finally {
    await service.close();
  }
}

it('a kill -9 in the middle of the deletes’ collection loses no live chunk, and the restart reclaims what it left', async () => {
  const disks = await fill();
  const ids = [...disks.keys()];
  // The parent of the child, and three others.
  const victims = ids.slice(0, 4);
  const first = await startServerProcess(dir, { SNAP_IMAGE_MAX_BYTES: String(MAX_BYTES) });
  children.push(first.proc);
  expect(await chunkFiles()).toEqual([...new Set([...disks.values()].flatMap(chunksOf))].sort());

  // Killed the moment the first index a delete removes is gone: its chunks are being reclaimed,
  // and the other deletes wait their turn behind it.
  const watcher = watch(join(dir, 'indexes'), () => first.proc.kill('SIGKILL'));
  const client = new GlanceHttpClient(first.url);
  const deletes = victims.map((id) => client.delete(id).then(() => 'deleted', () => 'cut'));
  await exited(first.proc);
  watcher.close();
  await Promise.all(deletes);

  const second = await startServerProcess(dir, { SNAP_IMAGE_MAX_BYTES: String(MAX_BYTES) });
  children.push(second.proc);
  const after = new GlanceHttpClient(second.url);
  const live: string[] = [];
  for (const id of ids) {
    const image = await after.get(id).catch((err: unknown) => {
      if (err instanceof ImageNotFound) return null;
      throw err;
    });
    if (image === null) continue;
    expect(image.status).toBe('active');
    live.push(id);
  }
  // Some deletes were cut before their record changed, some after: at least the one whose index went.
  expect(live.length).toBeLessThan(ids.length);
  expect(live.length).toBeGreaterThanOrEqual(ids.length - victims.length);
  // The killed process left chunks (and indexes) of deleted images; the start's repair took them.
  expect(second.recovery.removedChunks + second.recovery.removedIndexIds.length).toBeGreaterThan(0);

  for (const id of live) {
    const bytes = await downloaded(after, id);
    expect(bytes.equals(disks.get(id)!)).toBe(true);
    expect(md5(bytes)).toBe((await after.get(id)).checksum);
  }
  expect(await chunkFiles()).toEqual([...new Set(live.flatMap((id) => chunksOf(disks.get(id)!)))].sort());

  for (const id of live) await after.delete(id);
  expect(await chunkFiles()).toEqual([]);
  expect(await readdir(join(dir, 'indexes'))).toEqual([]);
}, 120_000);
