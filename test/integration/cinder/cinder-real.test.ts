// A real Cinder (cinder-api, -scheduler, -volume from PyPI; RabbitMQ from Debian) on a real
// single-node Ceph, and the project's Cinder client against it: a volume attached to an instance as
// Nova attaches it, snapshots made with force and found again by run name and metadata, each one a
// protected RBD snapshot `volumes/volume-<id>@snapshot-<id>`, Cinder's own quota refusal as a typed
// 413, deletion down to the cluster. Last, everything stops with no process and no file left.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { CinderClient, CinderError, confirmAttachedVolumes, createRunSnapshots, deleteRunSnapshots, VolumeNotAttached, waitRunSnapshots, type CinderConnection } from '../../../src/cinder';
import { RbdClient } from '../../../src/ceph';
import { useCephCluster } from '../../support/ceph';
import { useCinder } from '../../support/cinder';
import { CinderAdmin } from '../../support/openstack/cinder-admin';
import { portAnswers } from '../../support/free-port';
import { processesMentioning } from '../../support/test-process';

const ceph = useCephCluster();
const cinder = useCinder(ceph);
// noauth: the project in Cinder's URLs must be hex
const PROJECT = randomUUID().replace(/-/g, '');

function connection(projectId = PROJECT): CinderConnection {
  const c = cinder();
  return { baseUrl: c.baseUrl, projectId, token: () => Promise.resolve(c.noauthToken(projectId)), timeoutMs: 30_000 };
}

describe('the Cinder client on a real Cinder over RBD', () => {
  const instanceUuid = randomUUID();
  let volumeId = '';
  let snapshotId = '';

  it('sees a volume attached to an instance, from the volume and from its attachment records', async () => {
    const admin = new CinderAdmin(connection());
    volumeId = await admin.createVolume('root', 1);
    await admin.attach(volumeId, instanceUuid);
    const client = new CinderClient(connection());
    const volume = await client.showVolume(volumeId);
    expect(volume).toMatchObject({ id: volumeId, status: 'in-use', size: 1 });
    expect(volume.attachments.map((a) => a.server_id)).toEqual([instanceUuid]);
    const attachments = await client.listAttachments(volumeId);
    expect(attachments.map((a) => [a.instance, a.status])).toEqual([[instanceUuid, 'attached']]);
    // another project sees neither
    await expect(new CinderClient(connection(randomUUID().replace(/-/g, ''))).listAttachments(volumeId)).resolves.toEqual([]);
  });

  it("confirms a domain's volume claim only for the instance Cinder has it attached to, in its project", async () => {
    const claim = { volumeId, device: 'vda', root: true };
    const client = new CinderClient(connection());
    const [confirmed] = await confirmAttachedVolumes(client, instanceUuid, [claim]);
    expect(confirmed).toMatchObject({ ...claim, sizeGiB: 1 });
    await expect(confirmAttachedVolumes(client, randomUUID(), [claim])).rejects.toBeInstanceOf(VolumeNotAttached);
    const stranger = new CinderClient(connection(randomUUID().replace(/-/g, '')));
    await expect(confirmAttachedVolumes(stranger, instanceUuid, [claim])).rejects.toBeInstanceOf(VolumeNotAttached);
    await expect(confirmAttachedVolumes(client, instanceUuid, [{ ...claim, volumeId: randomUUID() }])).rejects.toBeInstanceOf(VolumeNotAttached);
  });

  it('snapshots the in-use volume with force, finds it by run name and metadata, as a protected RBD snapshot', async () => {
    const client = new CinderClient(connection());
    const created = await client.createSnapshot({ volumeId, name: 'snapshot-run-a', metadata: { snapshot_run: 'run-a' } });
    snapshotId = created.id;
    expect(created).toMatchObject({ volume_id: volumeId, name: 'snapshot-run-a' });
    await new CinderAdmin(connection()).waitSnapshot(snapshotId, 'available');
    const byName = await client.listSnapshots({ name: 'snapshot-run-a' });
    const byRun = await client.listSnapshots({ metadata: { snapshot_run: 'run-a' } });
    expect(byName.map((s) => s.id)).toEqual([snapshotId]);
    expect(byRun.map((s) => s.id)).toEqual([snapshotId]);
    await expect(client.listSnapshots({ metadata: { snapshot_run: 'run-b' } })).resolves.toEqual([]);
    const rbd = new RbdClient(ceph().admin);
    const snaps = await rbd.snapList({ pool: cinder().pool, image: `volume-${volumeId}` });
    expect(snaps.map((s) => [s.name, s.protected])).toEqual([[`snapshot-${snapshotId}`, true]]);
    await expect(client.snapshotQuota()).resolves.toEqual({ limit: 10, inUse: 1 });
  });

  it("answers a snapshot over the project's quota with Cinder's 413 overLimit, and makes none", async () => {
    const admin = new CinderAdmin(connection());
    await admin.setSnapshotQuota(1);
    const client = new CinderClient(connection());
    await expect(client.snapshotQuota()).resolves.toEqual({ limit: 1, inUse: 1 });
    const refused = await client.createSnapshot({ volumeId, name: 'snapshot-run-b', metadata: { snapshot_run: 'run-b' } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CinderError);
    expect(refused).toMatchObject({ status: 413, fault: 'overLimit', overLimit: true });
    await expect(client.listSnapshots({ name: 'snapshot-run-b' })).resolves.toEqual([]);
    await admin.setSnapshotQuota(10);
  });

  it('answers an unknown snapshot with 404 itemNotFound, and deletes down to the cluster', async () => {
    const client = new CinderClient(connection());
    await expect(client.showSnapshot(randomUUID())).rejects.toMatchObject({ status: 404, fault: 'itemNotFound' });
    await expect(client.deleteSnapshot(snapshotId)).resolves.toBe(true);
    await new CinderAdmin(connection()).waitSnapshotGone(snapshotId);
    await expect(client.deleteSnapshot(snapshotId)).resolves.toBe(false);
    const rbd = new RbdClient(ceph().admin);
    await expect(rbd.snapList({ pool: cinder().pool, image: `volume-${volumeId}` })).resolves.toEqual([]);
  });

  it("snapshots a run's volumes side by side, finds them again on a retry, and cleans up even one still creating", async () => {
    const admin = new CinderAdmin(connection());
    const client = new CinderClient(connection());
    const dataVolume = await admin.createVolume('data', 1);
    await admin.attach(dataVolume, instanceUuid);
    const volumes = [
      { volumeId, device: 'vda', root: true, sizeGiB: 1 },
      { volumeId: dataVolume, device: 'vdb', root: false, sizeGiB: 1 },
    ];
    const first = await createRunSnapshots(client, 'run-c', 'nightly', volumes);
    expect(first.snapshots.every((s) => s.created)).toBe(true);
    const retried = await createRunSnapshots(client, 'run-c', 'nightly', volumes);
    expect(retried.snapshots.map((s) => [s.snapshotId, s.created])).toEqual(first.snapshots.map((s) => [s.snapshotId, false]));
    await waitRunSnapshots(client, first.snapshots.map((s) => s.snapshotId), { deadlineMs: 60_000, pollMs: 250 });
    const rbd = new RbdClient(ceph().admin);
    for (const s of first.snapshots) {
      const snaps = await rbd.snapList({ pool: cinder().pool, image: `volume-${s.volumeId}` });
      expect(snaps.map((x) => x.name)).toEqual([`snapshot-${s.snapshotId}`]);
    }
    process.stderr.write(`[cinder] two snapshot create calls answered in ${first.callsMs} ms\n`);
    // a second run cleaned up at once, its snapshots still creating
    const second = await createRunSnapshots(client, 'run-d', 'nightly', volumes);
    await expect(deleteRunSnapshots(client, 'run-d', { deadlineMs: 60_000, pollMs: 250 })).resolves.toHaveLength(2);
    await expect(deleteRunSnapshots(client, 'run-c', { deadlineMs: 60_000, pollMs: 250 })).resolves.toHaveLength(2);
    for (const s of [...first.snapshots, ...second.snapshots]) await admin.waitSnapshotGone(s.snapshotId);
    for (const v of volumes) await expect(rbd.snapList({ pool: cinder().pool, image: `volume-${v.volumeId}` })).resolves.toEqual([]);
  });

  it('stops with no process and no file left', async () => {
    const c = cinder();
    expect((await processesMentioning(c.dir)).length).toBeGreaterThanOrEqual(3);
    await c.stop();
    expect(await processesMentioning(c.dir)).toEqual([]);
    for (const port of c.ports) expect(await portAnswers(port)).toBe(false);
    expect(existsSync(c.dir)).toBe(false);
  });
});
