// Building blocks of the composing store's tests: a disk with its map, staging what a layout sends
// (as a host would, in two appends), the image the host's writer makes of a disk, a download.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { encodeMap, sentPieces, type LogicalLayout } from '../../../src/images/client';
import { emit, type AllocationMap, type Extent, type planImage } from '../../../src/qcow2';

export const DISK = 8 * 1024 * 1024;

/** A disk and its map: data where `data` says, zeros elsewhere. */
export function diskWith(data: [number, number][], size = DISK): { disk: Buffer; map: AllocationMap } {
  const disk = Buffer.alloc(size);
  const extents: Extent[] = [];
  let at = 0;
  for (const [offset, length] of data) {
    if (offset > at) extents.push({ offset: at, length: offset - at, kind: 'hole' });
    randomBytes(length).copy(disk, offset);
    extents.push({ offset, length, kind: 'data' });
    at = offset + length;
  }
  if (at < size) extents.push({ offset: at, length: size - at, kind: 'hole' });
  return { disk, map: { virtualSize: size, extents } };
}

export async function served(plan: ReturnType<typeof planImage>, disk: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of emit(plan, (o, l) => disk.subarray(o, o + l))) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

export async function download(s: ImageService, id: string): Promise<Buffer> {
  const { data } = await s.openData(admin, id);
  const parts: Buffer[] = [];
  for await (const b of data ?? Readable.from([])) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/** Stages what the layout sends from `disk` in two appends, as a host would after a break. */
export async function stage(s: ImageService, id: string, layout: LogicalLayout, disk: Buffer, token = 'export-1'): Promise<void> {
  const body = Buffer.concat(sentPieces(layout).map((p) => disk.subarray(p.offset, p.offset + p.length)));
  await s.resumable.open(admin, id, { size: body.length, token, layout });
  const cut = Math.floor(body.length / 3);
  await s.resumable.append(admin, id, 0, Readable.from([body.subarray(0, cut)]));
  await s.resumable.append(admin, id, cut, Readable.from([body.subarray(cut)]));
}

/** Flips one bit of the byte at `at` of a file in place, its times kept: bit rot in a real chunk file. */
export async function flipByte(path: string, at: number): Promise<void> {
  const before = await stat(path);
  const file = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    await file.write(byte, 0, 1, at);
  } finally {
    await file.close();
  }
  await utimes(path, before.atime, before.mtime);
}

/** An active composed raw image of `disk` (its download is the disk itself). */
export async function composedRawImage(s: ImageService, disk: Buffer, map: AllocationMap, name: string): Promise<string> {
  const id = (await s.create(admin, { name, disk_format: 'raw', container_format: 'bare' })).id;
  await stage(s, id, { format: 'raw', map: encodeMap(map) }, disk);
  await s.resumable.commit(admin, id, {});
  return id;
}

/**
 * A fresh data dir for each test, and open(): the service on it (the previous one closed first, as
 * a restart), closed and removed after each test.
 */
export function serviceInTempDir(prefix: string, maxImageBytes = 64 * 1024 * 1024): { dir: () => string; open: () => Promise<ImageService> } {
  let dir = '';
  let service: ImageService | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    service = undefined;
  });
  afterEach(async () => {
    await service?.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    open: async () => {
      await service?.close();
      service = await ImageService.open({ dataDir: dir, maxImageBytes });
      return service;
    },
  };
}
