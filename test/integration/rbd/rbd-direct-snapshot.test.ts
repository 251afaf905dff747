// Nova's direct snapshot through the whole engine, on a real writing guest whose disk is in RBD,
// into a real Glance whose store is RBD on the same single-node Ceph (glance_store's rbd driver,
// Debian's rados/rbd bindings in its venv), behind a real Keystone. The image turns active at
// rbd://<fsid>/images/<id>/snap, the host streams nothing, no snapshot of ours is left on the disk.
// The fault cell: a Glance that cannot take an rbd location (its store is a file store) refuses the
// hand-off; the run streams instead into an image that is whole, and nothing is left in `images`.
import { RbdClient } from '../../../src/ceph';
import { DomainState } from '../../../src/libvirt';
import { GlanceHttpClient } from '../../../src/images/client';
import { runToolOutput } from '../../../src/process/tool-process';
import { rbdTarget } from '../../../src/testing/instance-lifecycle';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';
import type { Engine } from '../../support/engine-harness';
import { createRealGuest, snapshotRealGuest, snapshotShutOffGuest, verifySnapshotImage, waitForFsynced, type RealGuestRun } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { startGlance, type RunningGlance } from '../../support/openstack/glance';
import { startGlanceEngine } from '../../support/openstack/glance-engine';
import { startKeystone, type KeystoneUser, type RunningKeystone } from '../../support/openstack/keystone';
import { rbdLeftovers, useRbdGuests } from '../../support/rbd-guest';

jest.setTimeout(300_000);

const GLANCE_POOL = 'images';
const rbd = useRbdGuests();
let keystone: RunningKeystone;
let service: KeystoneUser;

beforeAll(async () => {
  keystone = await startKeystone();
  service = await keystone.createUser('snapshots', 'service', ['admin', 'service']);
}, 120_000);
afterAll(async () => {
  await keystone?.stop();
});

async function engineOn(glance: RunningGlance): Promise<{ engine: Engine; sent: () => number }> {
  const { engine, sent } = await startGlanceEngine(keystone, service, glance, rbd().hostEnv, GLANCE_POOL);
  return { engine, sent: () => sent.bytes };
}

async function createRbdGuest(options: Parameters<typeof createRealGuest>[0]): Promise<InstanceFixture> {
  return createRealGuest({ ...options, ...rbd().guestOptions() });
}

function cephClient(): RbdClient {
  return new RbdClient(rbd().cluster.client);
}

async function expectCleanImage(engine: Engine, run: RealGuestRun): Promise<void> {
  const image = await verifySnapshotImage(engine, run);
  expect(image.fsckClean).toBe(true);
  expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
  expect(await engine.images.get(run.imageId)).toMatchObject({ status: 'active', disk_format: 'raw', container_format: 'bare' });
}

describe("Nova's direct snapshot into a Glance on the same Ceph", () => {
  let glance: RunningGlance;
  let engine: Engine;
  let sent: () => number;
  beforeAll(async () => {
    const c = rbd().cluster;
    glance = await startGlance(keystone, { rbd: { confPath: c.confPath, user: c.client.user, pool: GLANCE_POOL } });
    ({ engine, sent } = await engineOn(glance));
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
    await glance?.stop();
  });

  it('live: cloned inside the cluster, quiesced, active at rbd://<fsid>/images/<id>/snap; the host streams 0 bytes; a clean ext4 with the log contiguous', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', dataPath: 'rbd-direct', quiesced: true });
      expect(run.result?.steps).toHaveProperty('direct_snapshot');
      expect(run.result?.steps).not.toHaveProperty('extract');
      expect(run.result?.size).toBe((await cephClient().info({ pool: 'vms', image: `${fixture.instance.uuid ?? ''}_disk` })).size);
      expect(sent()).toBe(0);
      // A measurement for the log, not a target: the benches compare it with the stream.
      process.stderr.write(`[direct] ${run.result?.size ?? 0} bytes: direct_snapshot ${run.result?.steps.direct_snapshot ?? '?'} ms, host sent ${sent()} bytes, freeze ${run.result?.freezeWindowMs ?? '-'} ms\n`);
      expect(run.state).toBe(DomainState.Running);
      const images = engine.images as GlanceHttpClient;
      expect(await images.locationUrls(run.imageId)).toEqual([`rbd://${rbd().cluster.fsid}/${GLANCE_POOL}/${run.imageId}/snap`]);
      // In Glance's pool: the image's own flattened copy and its protected `snap`, nothing else of ours.
      expect(await cephClient().list(GLANCE_POOL)).toEqual([run.imageId]);
      expect((await cephClient().info({ pool: GLANCE_POOL, image: run.imageId })).parent).toBeUndefined();
      expect(await cephClient().snapList({ pool: GLANCE_POOL, image: run.imageId })).toEqual([expect.objectContaining({ name: 'snap', protected: true })]);
      expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain, { images: [run.imageId] })).toEqual([]);
      await expectCleanImage(engine, run);
      await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 1);
    } finally {
      await fixture.cleanup();
    }
  });

  it('shut off: the image in RBD is identical to the disk, and the guest stays off', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 } });
    // The images of the cell above are Glance's now.
    const before = await cephClient().list(GLANCE_POOL);
    try {
      const { run } = await snapshotShutOffGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'rbd-direct', quiesced: false });
      expect(run.state).toBe(DomainState.Shutoff);
      const disk = fixture.instance.rbd;
      if (disk === null) throw new Error('no RBD disk');
      const copy = rbdTarget({ ...disk, pool: GLANCE_POOL, image: `${run.imageId}@snap` });
      const compared = await runToolOutput('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', copy, rbdTarget(disk)], { okExitCodes: [0, 1] });
      expect(compared.exitCode).toBe(0);
      expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain, { images: [...before, run.imageId] })).toEqual([]);
    } finally {
      await fixture.cleanup();
    }
  });
});

describe('fault: a Glance that refuses the location falls back to the stream', () => {
  let glance: RunningGlance;
  let engine: Engine;
  let sent: () => number;
  beforeAll(async () => {
    // Its store is a file store: glance_store cannot read an rbd:// location, Glance's location task
    // fails and the image is queued again (what a Glance on another cluster, or a policy, does too).
    glance = await startGlance(keystone);
    ({ engine, sent } = await engineOn(glance));
  }, 120_000);
  afterAll(async () => {
    await engine?.stop();
    await glance?.stop();
  });

  it('live: the direct attempt leaves no clone or snapshot, and the same run streams a whole, active image', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 } });
    // The images of the cells above are Glance's now; this run must add none.
    const before = await cephClient().list(GLANCE_POOL);
    try {
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', dataPath: 'backup-job' });
      expect(run.result?.steps).toHaveProperty('direct_snapshot');
      expect(sent()).toBe(run.result?.size);
      process.stderr.write(`[direct refused → stream] ${sent()} bytes sent; direct_snapshot ${run.result?.steps.direct_snapshot ?? '?'} ms, upload ${run.result?.steps.upload ?? '?'} ms\n`);
      expect(await cephClient().list(GLANCE_POOL)).toEqual(before);
      expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain, { images: before })).toEqual([]);
      await expectCleanImage(engine, run);
    } finally {
      await fixture.cleanup();
    }
  });
});
