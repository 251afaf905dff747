import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
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

  it('removes a dir after the answer: nothing waits but list, ensure and remove of the same dir, which see it gone', async () => {
    const dirs = new SnapshotWorkDirs(join(root, 'snapshots'));
    const dir = await dirs.ensure(KEY, true);
    await writeFile(join(dir, 'export.json'), '{}');
    const failures: unknown[] = [];
    dirs.removeAfterAnswer(KEY, (err) => failures.push(err));
    expect(await dirs.list()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    // A step of the same run after it (a compensation's close) gets a dir made anew, never one half removed.
    await writeFile(join(await dirs.ensure(KEY, true), 'export.json'), '{}');
    dirs.removeAfterAnswer(KEY, (err) => failures.push(err));
    const again = await dirs.ensure(KEY, false);
    expect(existsSync(join(again, 'export.json'))).toBe(false);
    expect((await stat(again)).mode & 0o777).toBe(0o700);
    await dirs.remove(KEY);
    expect(await dirs.list()).toEqual([]);
    expect(failures).toEqual([]);
  });

  it('reports a removal after the answer that fails, and settles all the same (the dir is left to the sweep)', async () => {
    // The root is a file: the dir cannot be removed (ENOTDIR), as a disk error would refuse it.
    const file = join(root, 'not-a-dir');
    await writeFile(file, '');
    const dirs = new SnapshotWorkDirs(file);
    const failures: unknown[] = [];
    dirs.removeAfterAnswer(KEY, (err) => failures.push(err));
    await expect(dirs.settled()).resolves.toBeUndefined();
    expect(failures).toEqual([expect.objectContaining({ code: 'ENOTDIR' })]);
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
