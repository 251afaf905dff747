// The benchmark guest: a virtual disk laid out as Nova lays one out (qcow2 base + overlay) with
// data written by qemu-io before the guest starts — a quarter of it in the base (the image cache)
// and the rest in the overlay (the guest's own writes), in 2 MiB extents spread over the whole
// disk so that neither convert, block copy nor the backup export sees one contiguous run. Each
// extent is random: no 256 KiB chunk equals another, so a named upload (which sends each distinct
// chunk once) carries all of it, as it would a real guest's data.
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../src/process/tool-process';
import { createInstanceFixture, type InstanceFixture } from '../../test/support/instance-fixture';
import { onCleanup } from './cleanup';

const MiB = 1024 ** 2;
const EXTENT = 2 * MiB;
const SLOT = 64 * MiB;
/** slot 0 holds the layout's own 64 KiB markers at 0 and 1 MiB */
const SLOT_START = 2 * MiB;

export interface FilledGuest {
  fixture: InstanceFixture;
  diskBytes: number;
  writtenBytes: number;
  baseBytes: number;
}

export interface FilledGuestOptions {
  /** virtual disk size, a multiple of 64 MiB (default 1 GiB) */
  diskBytes?: number;
  /** data written, up to about half the disk (default 256 MiB) */
  writtenBytes?: number;
  memoryMiB?: number;
  prefix?: string;
}

/** Writes `length` random bytes at `offset` of the qcow2 `file`, through `scratch` (qemu-io reads them from a file). */
async function writeRandom(file: string, offset: number, length: number, scratch: string): Promise<void> {
  await writeFile(scratch, randomBytes(length));
  await runTool('qemu-io', ['-f', 'qcow2', '-c', `write -s ${scratch} ${offset} ${length}`, file]);
}

export async function createFilledGuest(options: FilledGuestOptions = {}): Promise<FilledGuest> {
  const diskBytes = options.diskBytes ?? 1024 * MiB;
  const wanted = options.writtenBytes ?? 256 * MiB;
  const slots = diskBytes / SLOT;
  const perSlot = Math.round(wanted / slots / EXTENT);
  // extents must not touch: at most one every 3 MiB
  if (!Number.isInteger(slots) || perSlot < 1 || perSlot * (EXTENT + MiB) > SLOT - SLOT_START) {
    throw new Error(`cannot spread ${wanted} bytes over a ${diskBytes}-byte disk in 2 MiB extents`);
  }
  // defined but not started: qemu-io needs the write lock QEMU would hold
  const fixture = await createInstanceFixture({ diskSizeBytes: diskBytes, memoryMiB: options.memoryMiB ?? 64, start: false, prefix: options.prefix ?? 'snapbench' });
  onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  const { basePath, overlayPath } = fixture.instance;
  const basePerSlot = Math.max(1, Math.floor(perSlot / 4));
  const spacing = Math.floor((SLOT - SLOT_START) / perSlot / MiB) * MiB;
  let baseBytes = 0;
  let writtenBytes = 0;
  const scratch = join(fixture.dir, 'extent.random');
  for (let slot = 0; slot < slots; slot++) {
    for (let k = 0; k < perSlot; k++) {
      const inBase = k < basePerSlot;
      await writeRandom(inBase ? basePath : overlayPath, slot * SLOT + SLOT_START + k * spacing, EXTENT, scratch);
      if (inBase) baseBytes += EXTENT;
      writtenBytes += EXTENT;
    }
  }
  await rm(scratch, { force: true });
  const { client } = fixture;
  fixture.instance.domain = await client.domainCreateWithFlags(fixture.instance.domain, 0);
  return { fixture, diskBytes, writtenBytes, baseBytes };
}
