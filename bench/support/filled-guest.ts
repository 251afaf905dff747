// The benchmark guest: a 1 GiB virtual disk laid out as Nova lays one out (qcow2 base + overlay)
// with 256 MiB of data written by qemu-io before the guest starts — a quarter of it in the base
// (the image cache) and the rest in the overlay (the guest's own writes), in 2 MiB extents spread
// over the whole disk so that neither convert nor block copy sees one contiguous run.
import { writePattern } from '../../src/host/qemu-img';
import { createInstanceFixture, type InstanceFixture } from '../../test/support/instance-fixture';
import { onCleanup } from './cleanup';

const MiB = 1024 ** 2;
export const GUEST_DISK_BYTES = 1024 * MiB;
const EXTENT = 2 * MiB;
/** 16 slots of 64 MiB: 2 base extents + 6 overlay extents each = 16 × 16 MiB = 256 MiB. */
const SLOT = 64 * MiB;
const BASE_PER_SLOT = 2;
const OVERLAY_PER_SLOT = 6;

export interface FilledGuest {
  fixture: InstanceFixture;
  writtenBytes: number;
  baseBytes: number;
}

/** A distinct non-zero byte per extent, so no two extents (and no extent and zeroes) compare equal. */
function patternByte(index: number): number {
  return ((index * 37) % 254) + 1;
}

export async function createFilledGuest(options: { memoryMiB?: number; prefix?: string } = {}): Promise<FilledGuest> {
  // defined but not started: qemu-io needs the write lock QEMU would hold
  const fixture = await createInstanceFixture({ diskSizeBytes: GUEST_DISK_BYTES, memoryMiB: options.memoryMiB ?? 64, start: false, prefix: options.prefix ?? 'snapbench' });
  onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  const { basePath, overlayPath } = fixture.instance;
  let index = 0;
  let baseBytes = 0;
  let writtenBytes = 0;
  for (let slot = 0; slot * SLOT < GUEST_DISK_BYTES; slot++) {
    // base extents at +4 MiB (clear of the layout's own 64 KiB markers at 0 and 1 MiB)
    for (let i = 0; i < BASE_PER_SLOT; i++) {
      await writePattern(basePath, { byte: patternByte(index++), offset: slot * SLOT + 4 * MiB + i * 2 * EXTENT, length: EXTENT });
      baseBytes += EXTENT;
    }
    for (let i = 0; i < OVERLAY_PER_SLOT; i++) {
      await writePattern(overlayPath, { byte: patternByte(index++), offset: slot * SLOT + 16 * MiB + i * 2 * EXTENT, length: EXTENT });
    }
    writtenBytes += (BASE_PER_SLOT + OVERLAY_PER_SLOT) * EXTENT;
  }
  const { client } = fixture;
  fixture.instance.domain = await client.domainCreateWithFlags(fixture.instance.domain, 0);
  return { fixture, writtenBytes, baseBytes };
}
