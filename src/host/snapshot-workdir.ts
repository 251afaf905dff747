// The private temp dir each snapshot extracts into, under the configured snapshots directory
// (Nova's utils.tempdir(dir=CONF.libvirt.snapshots_directory)). Its name comes from the workflow
// run, so a retried or resumed attempt finds — and first wipes — what an earlier one left.
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { assertSafePath } from './qemu-img';

const WorkDirKeySchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a workflow run id (UUID)');
const PREFIX = 'snap-';

export class SnapshotWorkDirs {
  constructor(readonly root: string) {
    assertSafePath(root);
  }

  pathFor(key: string): string {
    return join(this.root, `${PREFIX}${WorkDirKeySchema.parse(key)}`);
  }

  /** A fresh, empty dir: 0700, or 0701 for live snapshots because QEMU must reach the delta inside. */
  async create(key: string, live: boolean): Promise<string> {
    const dir = this.pathFor(key);
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o700 });
    if (live) await chmod(dir, 0o701);
    return dir;
  }

  async remove(key: string): Promise<void> {
    await rm(this.pathFor(key), { recursive: true, force: true });
  }

  /** Work dirs present now (for the reconciler and for tests asserting nothing is left). */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.root)).filter((n) => n.startsWith(PREFIX)).map((n) => n.slice(PREFIX.length));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
