// Nova's snapshot_volume_backed end to end on a real Cinder over a real Ceph: a real writing guest
// booting from a Cinder volume (its RBD image `volumes/volume-<id>`, the `cinder` cephx user, the
// volume id as the disk's serial) is snapshotted through the engine; the image is active with a
// block_device_mapping naming the Cinder snapshot, and a volume Cinder creates from that snapshot
// holds a clean ext4 with the guest's log contiguous. A guest with a second volume, writing to both in
// lockstep, gets two snapshots of one point in time. A run that fails after its snapshots leaves
// no Cinder snapshot and no image, and the guest thawed and writing.
import { randomUUID } from 'node:crypto';
import { cinderForProject } from '../../../src/cinder';
import { ApplicationFailure } from '@temporalio/activity';
import type { ImageClient } from '../../../src/images/client';
import { defineCephSecret, type CephSecret } from '../../../src/testing/ceph/libvirt-secret';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced, verifyAppendLog, verifyLockstepLogs } from '../../../src/testing/guest/workload-verifiers';
import { useCephCluster } from '../../support/ceph';
import { cinderAdmin, createVolumeGuest, projectCinder, restoreSnapshot, type VolumeGuests } from '../../support/cinder-guest';
import { useCinder } from '../../support/cinder';
import { startEngine, type Engine } from '../../support/engine-harness';
import { fsyncedNow, waitForFsynced } from '../../support/guest/real-guest-run';
import { DEFAULT_TEST_URI } from '../../support/instance-fixture';

const ceph = useCephCluster();
const cinder = useCinder(ceph);
// noauth: the project in Cinder's URLs must be hex
const PROJECT = randomUUID().replace(/-/g, '');

let engine: Engine;
let secret: CephSecret | undefined;
let failImageWrites = false;

beforeAll(async () => {
  const c = cinder();
  secret = await defineCephSecret(DEFAULT_TEST_URI, c.cephUser, c.cephKey);
  const failing = (images: ImageClient): ImageClient => {
    const wrapped = Object.create(images) as ImageClient;
    // after the snapshots are available: the image step fails for good
    wrapped.setProperties = (id, properties) => (failImageWrites ? Promise.reject(ApplicationFailure.nonRetryable('injected: the image refuses its properties', 'InjectedFailure')) : images.setProperties(id, properties));
    return wrapped;
  };
  engine = await startEngine({ hostEnv: { SNAP_VOLUME_URL: c.baseUrl }, cinder: cinderForProject(c.baseUrl, undefined), wrapControlImages: failing });
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  await secret?.remove();
});

function guests(): VolumeGuests {
  if (secret === undefined) throw new Error('no libvirt secret (beforeAll failed)');
  return { cinder: cinder(), cluster: ceph(), secretUuid: secret.uuid, projectId: PROJECT };
}

async function snapshotsOfProject(): Promise<string[]> {
  return (await projectCinder(guests()).listSnapshots({})).map((s) => s.id);
}

interface MappingEntry {
  snapshot_id: string;
  volume_size: number;
  boot_index: number | null;
  device_name: string;
}

describe('snapshot_volume_backed on a real Cinder', () => {
  it('snapshots the root volume of a running writing guest; a volume made from the snapshot holds a clean ext4 with the log contiguous', async () => {
    const { fixture, volumeIds } = await createVolumeGuest(guests(), { workload: 'log', rateKiB: 512 });
    const [volumeId] = volumeIds;
    try {
      const xml = await fixture.client.domainGetXMLDesc(fixture.instance.domain, 0);
      expect(xml).toContain(`<serial>${volumeId}</serial>`);
      await engine.register(fixture, undefined, PROJECT);
      const fsyncedBefore = await fsyncedNow(fixture);
      const { imageId, result } = await engine.startSnapshot(fixture.instance.domain.uuid);
      const done = await result;
      expect(done).toMatchObject({ status: 'active', size: 0, dataPath: 'cinder-snapshot', mode: 'live', quiesced: true });
      expect(done.freezeWindowMs).toEqual(expect.any(Number));
      process.stderr.write(`[volume-backed] freeze window ${String(done.freezeWindowMs)} ms, run ${JSON.stringify(done.steps)}\n`);

      const image = await engine.images.get(imageId);
      expect(image).toMatchObject({ status: 'active', size: 0 });
      expect(image.properties).toMatchObject({ bdm_v2: 'True', root_device_name: '/dev/vda' });
      const mapping = JSON.parse(image.properties.block_device_mapping ?? '[]') as MappingEntry[];
      expect(mapping).toHaveLength(1);
      const [entry] = mapping;
      const snapshot = await projectCinder(guests()).showSnapshot(entry?.snapshot_id ?? '');
      expect(snapshot).toMatchObject({ volume_id: volumeId, status: 'available' });
      expect(entry).toMatchObject({ volume_size: 1, boot_index: 0 });

      // the guest writes on
      await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 1);

      const restored = await restoreSnapshot(guests(), snapshot.id, fixture.dir, 'log');
      expect(restored.fsckClean).toBe(true);
      const log = verifyAppendLog(restored.file, { minRecords: fsyncedBefore });
      expect(log.records).toBeGreaterThanOrEqual(Math.max(1, fsyncedBefore));
    } finally {
      await fixture.cleanup();
    }
  });

  it('snapshots a guest writing to two volumes in lockstep at one point in time: both snapshots in the image, both logs contiguous and at most the one record in flight apart', async () => {
    const { fixture, volumeIds } = await createVolumeGuest(guests(), { workload: 'lockstep', rateKiB: 16, dataVolumes: 1 });
    const [rootId, dataId] = volumeIds;
    try {
      const xml = await fixture.client.domainGetXMLDesc(fixture.instance.domain, 0);
      expect(xml).toMatch(new RegExp(`<target dev='vdb' bus='virtio'/>\\s*<serial>${dataId}</serial>`));
      await engine.register(fixture, undefined, PROJECT);
      const fsyncedBefore = await fsyncedNow(fixture);
      expect(fsyncedBefore).toBeGreaterThan(0);
      const { imageId, result } = await engine.startSnapshot(fixture.instance.domain.uuid);
      const done = await result;
      expect(done).toMatchObject({ status: 'active', size: 0, dataPath: 'cinder-snapshot', mode: 'live', quiesced: true });
      process.stderr.write(`[volume-backed] two volumes: freeze window ${String(done.freezeWindowMs)} ms\n`);

      const image = await engine.images.get(imageId);
      expect(image.properties).toMatchObject({ bdm_v2: 'True', root_device_name: '/dev/vda' });
      const mapping = JSON.parse(image.properties.block_device_mapping ?? '[]') as MappingEntry[];
      expect(mapping.map((m) => [m.device_name, m.boot_index, m.volume_size])).toEqual([
        ['/dev/vda', 0, 1],
        ['/dev/vdb', null, 1],
      ]);
      const snapshots = await Promise.all(mapping.map((m) => projectCinder(guests()).showSnapshot(m.snapshot_id)));
      expect(snapshots.map((s) => [s.volume_id, s.status])).toEqual([
        [rootId, 'available'],
        [dataId, 'available'],
      ]);

      // thawed: both logs grow on
      await waitForFsynced(fixture.instance.consolePath, 'lockstep', lastFsynced(await readConsole(fixture.instance.consolePath), 'lockstep') + 1);

      const [first, second] = await Promise.all(snapshots.map((s) => restoreSnapshot(guests(), s.id, fixture.dir, 'log')));
      expect([first?.fsckClean, second?.fsckClean]).toEqual([true, true]);
      if (first === undefined || second === undefined) throw new Error('two snapshots were restored');
      const logs = verifyLockstepLogs(first.file, second.file, { minRecords: fsyncedBefore });
      process.stderr.write(`[volume-backed] lockstep records: vda ${logs.first.records}, vdb ${logs.second.records} (${fsyncedBefore} fsynced before)\n`);
      expect(logs.first.records).toBeGreaterThanOrEqual(fsyncedBefore);

      // the rule tells moments apart: vda's snapshot, then 32 records later vdb's, no freeze between
      const lastReport = async (): Promise<number> => lastFsynced(await readConsole(fixture.instance.consolePath), 'lockstep');
      const early = await projectCinder(guests()).createSnapshot({ volumeId: rootId ?? '', name: 'early', metadata: {} });
      await waitForFsynced(fixture.instance.consolePath, 'lockstep', (await lastReport()) + 32);
      const late = await projectCinder(guests()).createSnapshot({ volumeId: dataId ?? '', name: 'late', metadata: {} });
      await Promise.all([early, late].map((s) => cinderAdmin(guests()).waitSnapshot(s.id, 'available')));
      const [earlyLog, lateLog] = await Promise.all([early, late].map((s) => restoreSnapshot(guests(), s.id, fixture.dir, 'log')));
      expect(() => verifyLockstepLogs(earlyLog?.file ?? Buffer.alloc(0), lateLog?.file ?? Buffer.alloc(0))).toThrow(expect.objectContaining({ kind: 'not-one-point' }));
    } finally {
      await fixture.cleanup();
    }
  });

  it('a run failing after its snapshots leaves no Cinder snapshot and no image, and the guest thawed', async () => {
    const { fixture } = await createVolumeGuest(guests(), { workload: 'log', rateKiB: 512 });
    const before = await snapshotsOfProject();
    try {
      await engine.register(fixture, undefined, PROJECT);
      failImageWrites = true;
      const { imageId, result } = await engine.startSnapshot(fixture.instance.domain.uuid);
      // failed at the injected point, after the snapshots were available
      await expect(result).rejects.toMatchObject({ cause: { type: 'InjectedFailure' } });
      failImageWrites = false;
      await expect(engine.images.get(imageId)).rejects.toThrow();
      const deadline = Date.now() + 60_000;
      while ((await snapshotsOfProject()).length > before.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      expect(await snapshotsOfProject()).toEqual(before);
      // thawed: the guest's log keeps growing
      await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 2);
    } finally {
      failImageWrites = false;
      await fixture.cleanup();
    }
  });
});
