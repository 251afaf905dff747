import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';

const KEY = '01a2136c-f964-7829-9542-d46c21c7de15';

describe('SnapshotWorkDirs', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'workdirs-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates private dirs (0700 cold, 0701 live so QEMU can reach the delta) and removes them', async () => {
    const dirs = new SnapshotWorkDirs(join(root, 'snapshots'));
    const cold = await dirs.create(KEY, false);
    expect((await stat(cold)).mode & 0o777).toBe(0o700);
    const live = await dirs.create(KEY, true);
    expect(live).toBe(cold);
    expect((await stat(live)).mode & 0o777).toBe(0o701);
    expect(await dirs.list()).toEqual([KEY]);
    await dirs.remove(KEY);
    expect(await dirs.list()).toEqual([]);
  });

  it('refuses keys that are not run ids, so nothing outside the root can be named', () => {
    const dirs = new SnapshotWorkDirs(root);
    for (const key of ['../etc', 'a/b', '', `${KEY}/..`]) expect(() => dirs.pathFor(key)).toThrow();
  });

  it('lists nothing when the root does not exist yet, and refuses a relative root', async () => {
    expect(await new SnapshotWorkDirs(join(root, 'absent')).list()).toEqual([]);
    expect(() => new SnapshotWorkDirs('relative/dir')).toThrow();
  });
});
