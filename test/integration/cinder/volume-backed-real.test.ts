// Nova's snapshot_volume_backed end to end on a real Cinder over a real Ceph: a real writing guest
// booting from a Cinder volume (its RBD image `volumes/volume-<id>`, the `cinder` cephx user, the
// volume id as the disk's serial) is snapshotted through the engine; the image is active with a
// block_device_mapping naming the Cinder snapshot, and a volume Cinder creates from that snapshot
// holds a clean ext4 with the guest's log contiguous. A run that fails after its snapshots leaves
// no Cinder snapshot and no image, and the guest thawed and writing.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { CinderClient, cinderForProject } from '../../../src/cinder';
import { ApplicationFailure } from '@temporalio/activity';
import type { ImageClient } from '../../../src/images/client';
import { runTool } from '../../../src/process/tool-process';
import { rbdTarget } from '../../../src/testing/instance-lifecycle';
import { defineCephSecret, type CephSecret } from '../../../src/testing/ceph/libvirt-secret';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { withGuestImage } from '../../../src/testing/guest/guest-image-reader';
import { lastFsynced, verifyAppendLog } from '../../../src/testing/guest/workload-verifiers';
import { useCephCluster } from '../../support/ceph';
import { useCinder } from '../../support/cinder';
import { startEngine, type Engine } from '../../support/engine-harness';
import { fsyncedNow, waitForFsynced } from '../../support/guest/real-guest-run';
import { createVolumeGuest } from '../../support/volume-guest';
import { DEFAULT_TEST_URI, type InstanceFixture } from '../../support/instance-fixture';
import { CinderAdmin } from '../../support/openstack/cinder-admin';

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

function admin(): CinderAdmin {
  const c = cinder();
  return new CinderAdmin({ baseUrl: c.baseUrl, projectId: PROJECT, token: () => Promise.resolve(c.noauthToken(PROJECT)), timeoutMs: 30_000 });
}

function client(): CinderClient {
  return cinderForProject(cinder().baseUrl, undefined)(PROJECT);
}

/** A writing guest booting from a new 1 GiB Cinder volume attached to it, the volume filled with the guest's ext4. */
async function volumeGuest(): Promise<{ fixture: InstanceFixture; volumeId: string }> {
  if (secret === undefined) throw new Error('no libvirt secret (beforeAll failed)');
  return createVolumeGuest({ cinder: cinder(), ceph: ceph(), secret, admin: admin() });
}

async function snapshotsOfProject(): Promise<string[]> {
  return (await client().listSnapshots({})).map((s) => s.id);
}

describe('snapshot_volume_backed on a real Cinder', () => {
  it('snapshots the root volume of a running writing guest; a volume made from the snapshot holds a clean ext4 with the log contiguous', async () => {
    const { fixture, volumeId } = await volumeGuest();
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
      const mapping = JSON.parse(image.properties.block_device_mapping ?? '[]') as { snapshot_id: string; volume_size: number; boot_index: number }[];
      expect(mapping).toHaveLength(1);
      const [entry] = mapping;
      const snapshot = await client().showSnapshot(entry?.snapshot_id ?? '');
      expect(snapshot).toMatchObject({ volume_id: volumeId, status: 'available' });
      expect(entry).toMatchObject({ volume_size: 1, boot_index: 0 });

      // the guest writes on
      await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 1);

      const restored = await admin().createVolume('restored', 1, snapshot.id);
      const file = join(fixture.dir, 'restored.raw');
      const disk = fixture.instance.rbd;
      if (disk === null) throw new Error('the guest has no RBD disk');
      await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'raw', rbdTarget({ ...disk, image: `volume-${restored}` }), file]);
      await withGuestImage(file, fixture.dir, async (img) => {
        expect((await img.fsck()).clean).toBe(true);
        const log = verifyAppendLog(await img.readFile('log'), { minRecords: fsyncedBefore });
        expect(log.records).toBeGreaterThanOrEqual(Math.max(1, fsyncedBefore));
      }, { format: 'raw' });
    } finally {
      await fixture.cleanup();
    }
  });

  it('a run failing after its snapshots leaves no Cinder snapshot and no image, and the guest thawed', async () => {
    const { fixture } = await volumeGuest();
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
