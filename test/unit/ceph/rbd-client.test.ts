// The Ceph client's argv and parsing, against fake `rbd`/`ceph` tools that record their argv and
// answer what the test tells them to.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CephCommandError, CephNameError, errnoOf, parseImageSpec, RbdClient, type CephConnection } from '../../../src/ceph';
import { HostPathError } from '../../../src/fs/safe-path';
import { ToolOutputInvalid } from '../../../src/process/tool-process';
import { useFakeCephTools } from '../../support/fake-ceph-tools';

const fake = useFakeCephTools();
const argvFile = (): string => fake().argvFile;
const answer = (stdout: string, opts: { exit?: number; stderr?: string } = {}): Promise<void> => fake().answer(stdout, opts);
const argv = (): Promise<string[]> => fake().argv();

beforeAll(() => {
  conn.toolDir = fake().dir;
});

const conn: CephConnection = { confPath: '/etc/ceph/ceph.conf', user: 'nova' };
const rbd = new RbdClient(conn);
const disk = { pool: 'vms', image: '0f2b6c4e-2f4a-4d1e-9a51-6d2c1b7e9f00_disk' };

describe('names', () => {
  it.each(['-x', '--pool=other', 'a/b', 'a@b', '', '.hidden', 'x'.repeat(129), 'spa ce', 'new\nline'])('refuses %j as an image name before anything runs', async (image) => {
    await expect(rbd.snapCreate({ pool: 'vms', image }, 's1')).rejects.toBeInstanceOf(CephNameError);
    expect(existsSync(argvFile())).toBe(false);
  });

  it('refuses a snapshot name that would pose as an option', async () => {
    await expect(rbd.diff(disk, { fromSnap: '--whole-object' })).rejects.toBeInstanceOf(CephNameError);
    await expect(rbd.snapRemove(disk, '-s')).rejects.toBeInstanceOf(CephNameError);
    expect(existsSync(argvFile())).toBe(false);
  });

  it('refuses a user id or conf path that could reach another cluster or file', async () => {
    await expect(new RbdClient({ ...conn, user: 'client.admin --keyring /x' }).info(disk)).rejects.toBeInstanceOf(CephNameError);
    await expect(new RbdClient({ ...conn, confPath: '/etc/ceph/../../var/evil.conf' }).info(disk)).rejects.toBeInstanceOf(HostPathError);
    expect(existsSync(argvFile())).toBe(false);
  });

  it('splits the pool/image a libvirt rbd disk names, and nothing else', () => {
    expect(parseImageSpec('vms/abc_disk')).toEqual({ pool: 'vms', image: 'abc_disk' });
    expect(() => parseImageSpec('vms/abc_disk@snap')).toThrow(CephNameError);
    expect(() => parseImageSpec('vms/a/b')).toThrow(CephNameError);
    expect(() => parseImageSpec('abc_disk')).toThrow(CephNameError);
  });
});

describe('argv and parsing', () => {
  it('creates a snapshot with the connection first and no progress output', async () => {
    await answer('');
    await rbd.snapCreate(disk, 'snap-1');
    expect(await argv()).toEqual(['--conf', '/etc/ceph/ceph.conf', '--id', 'nova', 'snap', 'create', '--no-progress', `vms/${disk.image}@snap-1`]);
  });

  it('passes the keyring when one is configured', async () => {
    await answer('');
    await new RbdClient({ ...conn, keyringPath: '/etc/ceph/ceph.client.nova.keyring' }).snapProtect(disk, 's');
    expect(await argv()).toEqual(['--conf', '/etc/ceph/ceph.conf', '--id', 'nova', '--keyring', '/etc/ceph/ceph.client.nova.keyring', 'snap', 'protect', `vms/${disk.image}@s`]);
  });

  it('reads rbd info, with its sizes as numbers', async () => {
    await answer('{"name":"x_disk","id":"101b","size":67108864,"objects":16,"order":22,"object_size":4194304,"snapshot_count":2,"format":2,"features":["layering","exclusive-lock","object-map","fast-diff","deep-flatten"],"op_features":[],"flags":[]}');
    await expect(rbd.info(disk)).resolves.toEqual({ name: 'x_disk', id: '101b', size: 67108864, objectSize: 4194304, snapshotCount: 2, features: ['layering', 'exclusive-lock', 'object-map', 'fast-diff', 'deep-flatten'] });
    expect((await argv()).slice(4)).toEqual(['info', `vms/${disk.image}`, '--format', 'json']);
  });

  it('reads the snapshot list, with rbd\'s "true"/"false" strings as booleans', async () => {
    await answer('[{"id":4,"name":"s1","size":67108864,"protected":"true","timestamp":"Sun Dec  6 21:28:10 2026"},{"id":5,"name":"s2","size":67108864,"protected":"false"}]');
    await expect(rbd.snapList(disk)).resolves.toEqual([
      { id: 4, name: 's1', size: 67108864, protected: true },
      { id: 5, name: 's2', size: 67108864, protected: false },
    ]);
  });

  it('reads a diff between two snapshots, sorted by offset', async () => {
    await answer('[{"offset":8388608,"length":4194304,"exists":"false"},{"offset":0,"length":1114112,"exists":"true"}]');
    await expect(rbd.diff(disk, { fromSnap: 's1', at: 's2' })).resolves.toEqual([
      { offset: 0, length: 1114112, exists: true },
      { offset: 8388608, length: 4194304, exists: false },
    ]);
    expect((await argv()).slice(4)).toEqual(['diff', '--from-snap', 's1', `vms/${disk.image}@s2`, '--format', 'json']);
  });

  it('refuses output it cannot read instead of guessing', async () => {
    await answer('[{"offset":-1,"length":4096,"exists":"true"}]');
    await expect(rbd.diff(disk)).rejects.toBeInstanceOf(ToolOutputInvalid);
    await answer('{"name":"x","id":"1","size":"big"}');
    await expect(rbd.info(disk)).rejects.toBeInstanceOf(ToolOutputInvalid);
  });
});

describe('errors', () => {
  it('carries the exit code and the errno rbd names; a missing image is final and find() says null', async () => {
    await answer('', { exit: 2, stderr: 'rbd: error opening image nope: (2) No such file or directory\n' });
    const err = await rbd.info(disk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CephCommandError);
    expect(err).toMatchObject({ tool: 'rbd', exitCode: 2, errno: 'ENOENT', notFound: true, retryable: false });
    await expect(rbd.find(disk)).resolves.toBeNull();
    await expect(rbd.snapRemove(disk, 's1')).resolves.toBe(false);
  });

  it('reads EBUSY from the exit code when the text names no errno (a protected snapshot)', async () => {
    await answer('', { exit: 16, stderr: "rbd: snapshot 's1' is protected from removal.\n" });
    const err = await rbd.snapRemove(disk, 's1').catch((e: unknown) => e);
    expect(err).toMatchObject({ errno: 'EBUSY', busy: true, retryable: true });
  });

  it('reads the ceph CLI\'s "Error EXXX:" form', () => {
    expect(errnoOf('Error EACCES: access denied\n', 13)).toBe('EACCES');
    expect(errnoOf('2026-12-06T21:28:12 -1 librbd: ... (110) Connection timed out\n', 1)).toBe('ETIMEDOUT');
    expect(errnoOf('something odd\n', 1)).toBeNull();
  });

  it('kills a tool that outlives its deadline (monitors out of reach) and says so', async () => {
    await answer('{}');
    await writeFile(path.join(fake().dir, 'sleep'), '5');
    const started = Date.now();
    const err = await new RbdClient({ ...conn, timeoutMs: 300 }).info(disk).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CephCommandError);
    expect(err).toMatchObject({ exitCode: null, retryable: true });
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
