// Real writing guests whose root disk is a block device laid out as Nova's images_type=lvm names
// it, `<vg dir>/<instance uuid>_disk`, with a loop device standing in for the logical volume (no
// device-mapper on this machine kind). One volume-group directory per test file, which is what the
// host worker is told it may read (SNAP_BLOCK_DEVICE_PATHS).
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FixtureOptions } from './instance-fixture';

export interface BlockGuests {
  /** the directory of device names, the volume group's /dev/<vg> */
  vgDir: string;
  /** the host worker's settings admitting this directory's block devices */
  hostEnv: Record<string, string>;
  /** fixture options that put a new guest's root disk on a loop device named as Nova's LV */
  guestOptions(): Pick<FixtureOptions, 'uuid' | 'block'>;
}

/** Registers the directory for this file; the getter is valid inside tests and in later beforeAll hooks. */
export function useBlockGuests(): () => BlockGuests {
  let vgDir: string | undefined;
  beforeAll(async () => {
    vgDir = await mkdtemp(join(tmpdir(), 'snapvg-'));
  });
  afterAll(async () => {
    if (vgDir !== undefined) await rm(vgDir, { recursive: true, force: true });
  });
  return () => {
    const dir = vgDir;
    if (dir === undefined) throw new Error('the volume group directory is not made (beforeAll failed)');
    return {
      vgDir: dir,
      hostEnv: { SNAP_BLOCK_DEVICE_PATHS: dir },
      guestOptions() {
        const uuid = randomUUID();
        return { uuid, block: { dir, name: `${uuid}_disk` } };
      },
    };
  };
}
