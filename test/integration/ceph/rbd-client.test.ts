// The Ceph client against a real single-node cluster: snapshots, their protection, the extents
// `rbd diff --from-snap` reports between two points in time, typed errors with the errno, and the
// client user's caps confined to its pools. Last, the cluster stops with no daemon or file left.
import { existsSync } from 'node:fs';
import { CephCommandError, RbdClient, RbdClones, runCeph } from '../../../src/ceph';
import { runTool } from '../../../src/process/tool-process';
import { useCephCluster } from '../../support/ceph';
import { processesMentioning } from '../../support/test-process';

const MiB = 1024 * 1024;
const cluster = useCephCluster();
const disk = { pool: 'vms', image: '6b0f5a7e-1c2d-4e3f-8a9b-0c1d2e3f4a5b_disk' };

function rbdUri(): string {
  const c = cluster();
  return `rbd:${disk.pool}/${disk.image}:conf=${c.confPath}:id=${c.client.user}`;
}

async function write(byte: number, offset: number, length: number): Promise<void> {
  await runTool('qemu-io', ['-f', 'raw', '-c', `write -P 0x${byte.toString(16)} ${offset} ${length}`, rbdUri()]);
}

describe('RbdClient on a real cluster', () => {
  it('came up healthy within the bound CI can afford', () => {
    expect(cluster().startMs).toBeLessThan(60_000);
  });

  it('reads an image, takes snapshots, and reports only the extents written between them', async () => {
    const c = cluster();
    const rbd = new RbdClient(c.client);
    await runCeph(c.client, 'rbd', ['create', '--size', '64M', `${disk.pool}/${disk.image}`]);
    const info = await rbd.info(disk);
    expect(info).toMatchObject({ name: disk.image, size: 64 * MiB, snapshotCount: 0 });
    expect(info.features).toEqual(expect.arrayContaining(['object-map', 'fast-diff']));

    await write(0x11, 0, MiB);
    await rbd.snapCreate(disk, 's1');
    await write(0x22, 40 * MiB, 64 * 1024);
    await rbd.snapCreate(disk, 's2');
    expect((await rbd.snapList(disk)).map((s) => s.name)).toEqual(['s1', 's2']);

    const changed = await rbd.diff(disk, { fromSnap: 's1', at: 's2' });
    // object granularity (4 MiB objects): only the object holding 40 MiB changed
    expect(changed).toHaveLength(1);
    expect(changed[0]?.exists).toBe(true);
    expect(changed[0]?.offset).toBeLessThanOrEqual(40 * MiB);
    expect((changed[0]?.offset ?? 0) + (changed[0]?.length ?? 0)).toBeGreaterThanOrEqual(40 * MiB + 64 * 1024);
    expect(changed[0]?.offset).toBeGreaterThanOrEqual(40 * MiB - 4 * MiB);
    const all = await rbd.diff(disk, { at: 's2' });
    expect(all.map((e) => e.offset)).toEqual([0, changed[0]?.offset]);
    await expect(rbd.diff(disk, { fromSnap: 's2' })).resolves.toEqual([]);
  });

  it('protects a snapshot against removal with EBUSY, and removes it once unprotected', async () => {
    const rbd = new RbdClient(cluster().client);
    await rbd.snapProtect(disk, 's1');
    expect((await rbd.snapList(disk)).find((s) => s.name === 's1')?.protected).toBe(true);
    const err = await rbd.snapRemove(disk, 's1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CephCommandError);
    expect(err).toMatchObject({ errno: 'EBUSY', retryable: true });
    await rbd.snapUnprotect(disk, 's1');
    await expect(rbd.snapRemove(disk, 's1')).resolves.toBe(true);
    await expect(rbd.snapRemove(disk, 's1')).resolves.toBe(false);
    expect((await rbd.snapList(disk)).map((s) => s.name)).toEqual(['s2']);
  });

  it('says ENOENT for a missing image, and the cluster fsid matches', async () => {
    const c = cluster();
    const rbd = new RbdClient(c.client);
    await expect(rbd.find({ pool: 'vms', image: 'no-such_disk' })).resolves.toBeNull();
    const err = await rbd.snapCreate({ pool: 'vms', image: 'no-such_disk' }, 's').catch((e: unknown) => e);
    expect(err).toMatchObject({ errno: 'ENOENT', retryable: false });
    await expect(rbd.fsid()).resolves.toBe(c.fsid);
  });

  it('keeps the client user to its pools', async () => {
    const c = cluster();
    await runCeph(c.admin, 'ceph', ['osd', 'pool', 'create', 'other', '1', '1']);
    await runCeph(c.admin, 'rbd', ['pool', 'init', 'other']);
    await runCeph(c.admin, 'rbd', ['create', '--size', '4M', 'other/secret']);
    const err = await new RbdClient(c.client).info({ pool: 'other', image: 'secret' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CephCommandError);
    expect(['EPERM', 'EACCES']).toContain((err as CephCommandError).errno);
    await expect(new RbdClient(c.admin).info({ pool: 'other', image: 'secret' })).resolves.toMatchObject({ size: 4 * MiB });
  });

  it('clones a protected snapshot into the images pool, flattens it to the same bytes, and removes both whatever their protection', async () => {
    const c = cluster();
    const clones = new RbdClones(c.client);
    const copy = { pool: 'images', image: 'direct-copy' };
    await clones.rbd.snapProtect(disk, 's2');
    await clones.clone(disk, 's2', copy);
    expect((await clones.rbd.info(copy)).parent).toEqual({ pool: 'vms', image: disk.image, snapshot: 's2' });
    // Its clone holds the snapshot: unprotecting it is refused, and nothing is removed.
    await expect(clones.removeSnapshot(disk, 's2')).rejects.toMatchObject({ errno: 'EBUSY' });
    await clones.flatten(copy);
    await clones.flatten(copy);
    expect((await clones.rbd.info(copy)).parent).toBeUndefined();
    const uri = (spec: string): string => `rbd:${spec}:conf=${c.confPath}:id=${c.client.user}`;
    await runTool('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', uri(`${disk.pool}/${disk.image}@s2`), uri(`images/${copy.image}`)]);
    await clones.rbd.snapCreate(copy, 'snap');
    await clones.rbd.snapProtect(copy, 'snap');
    await expect(clones.removeImage(copy)).resolves.toBe(true);
    await expect(clones.removeImage(copy)).resolves.toBe(false);
    await expect(clones.removeSnapshot(disk, 's2')).resolves.toBe(true);
    await expect(clones.rbd.list('images')).resolves.toEqual([]);
  });

  it('removes an image with no snapshots left', async () => {
    const rbd = new RbdClient(cluster().client);
    await rbd.snapRemove(disk, 's2');
    await expect(rbd.remove(disk)).resolves.toBe(true);
    await expect(rbd.list('vms')).resolves.toEqual([]);
  });

  it('stops with no daemon and no file left', async () => {
    const c = cluster();
    expect(await processesMentioning(c.dir)).toHaveLength(3);
    await c.stop();
    expect(await processesMentioning(c.dir)).toEqual([]);
    expect(existsSync(c.dir)).toBe(false);
  });
});
