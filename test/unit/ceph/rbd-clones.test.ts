// Clone, flatten and the clean-up of clones: argv against fake `rbd` tools, names refused before
// anything runs, errors carrying rbd's errno.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CephCommandError, CephNameError, RbdClones, type CephConnection } from '../../../src/ceph';
import { useFakeCephTools } from '../../support/fake-ceph-tools';

const fake = useFakeCephTools();
const conn: CephConnection = { confPath: '/etc/ceph/ceph.conf', user: 'nova' };
const disk = { pool: 'vms', image: '0f2b6c4e-2f4a-4d1e-9a51-6d2c1b7e9f00_disk' };
const copy = { pool: 'images', image: '5d3c2b1a-0f9e-4d8c-b7a6-958473625140' };
let clones: RbdClones;

beforeAll(() => {
  clones = new RbdClones({ ...conn, toolDir: fake().dir });
});

it('clones a snapshot into another pool, the clone format stated', async () => {
  await fake().answer('');
  await clones.clone(disk, 'direct-1', copy);
  expect(await fake().argv()).toEqual(['--conf', '/etc/ceph/ceph.conf', '--id', 'nova', 'clone', '--rbd-default-clone-format', '1', `vms/${disk.image}@direct-1`, `images/${copy.image}`]);
});

it('flattens without progress output', async () => {
  await fake().answer('');
  await clones.flatten(copy);
  expect((await fake().argv()).slice(4)).toEqual(['flatten', '--no-progress', `images/${copy.image}`]);
});

it('gives a flatten its own deadline, longer than a command\'s', async () => {
  await fake().answer('');
  await writeFile(path.join(fake().dir, 'sleep'), '1');
  const quick = new RbdClones({ ...conn, toolDir: fake().dir, timeoutMs: 300 });
  await expect(quick.flatten(copy)).rejects.toMatchObject({ exitCode: null, retryable: true });
  await expect(quick.flatten(copy, { timeoutMs: 5_000 })).resolves.toBeUndefined();
});

it('refuses names that would reach another pool or pose as an option, before anything runs', async () => {
  await expect(clones.clone(disk, '--force', copy)).rejects.toBeInstanceOf(CephNameError);
  await expect(clones.clone(disk, 's', { pool: 'images', image: 'x/../vms' })).rejects.toBeInstanceOf(CephNameError);
  await expect(clones.flatten({ pool: '-p', image: 'x' })).rejects.toBeInstanceOf(CephNameError);
  await expect(clones.removeImage({ pool: 'images', image: 'a@b' })).rejects.toBeInstanceOf(CephNameError);
  expect(existsSync(fake().argvFile)).toBe(false);
});

it('a clone over an existing image fails EEXIST, final', async () => {
  await fake().answer('', { exit: 17, stderr: 'rbd: clone error: (17) File exists\n' });
  const err = await clones.clone(disk, 's', copy).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CephCommandError);
  expect(err).toMatchObject({ errno: 'EEXIST', exists: true, retryable: false });
});

it('a flatten whose parent is still there fails with its errno (not taken for "already flat")', async () => {
  await fake().answer('', { exit: 16, stderr: 'rbd: flatten error: (16) Device or resource busy\n' });
  await expect(clones.flatten(copy)).rejects.toMatchObject({ errno: 'EBUSY' });
});

it('removing a snapshot or an image that is not there says false', async () => {
  await fake().answer('', { exit: 2, stderr: 'rbd: error opening image: (2) No such file or directory\n' });
  await expect(clones.removeSnapshot(disk, 'direct-1')).resolves.toBe(false);
  await expect(clones.removeImage(copy)).resolves.toBe(false);
});

it('removing a snapshot the image does not have says false and removes nothing', async () => {
  await fake().answer('[{"id":4,"name":"other","size":1048576,"protected":"true"}]');
  await expect(clones.removeSnapshot(disk, 'direct-1')).resolves.toBe(false);
  expect((await fake().argv()).slice(4)).toEqual(['snap', 'ls', `vms/${disk.image}`, '--format', 'json']);
});
