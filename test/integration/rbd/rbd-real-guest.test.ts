// Snapshots of real writing guests whose root disk is in Ceph RBD (Nova's images_type=rbd: a raw
// image vms/<uuid>_disk, a network disk in the domain XML, the cephx key in a libvirt secret),
// through the whole engine. Live: libvirt's backup job reads the RBD disk, quiesced. Cold (live
// snapshots disabled, or a paused guest): managedSave, a read-only qemu-nbd of the stopped image,
// the guest restored as it was. Every image is raw, a clean ext4 with the guest's log contiguous;
// no RBD snapshot and no file of ours is left.
import { readdir } from 'node:fs/promises';
import { DomainState } from '../../../src/libvirt';
import { POWER_STATE_PAUSED } from '../../../src/contract';
import { runToolOutput } from '../../../src/process/tool-process';
import { rbdTarget } from '../../../src/testing/instance-lifecycle';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';
import { startEngine, type Engine } from '../../support/engine-harness';
import { createRealGuest, expectCleanRawImage, snapshotRealGuest, snapshotShutOffGuest, waitForFsynced } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { rbdLeftovers, useRbdGuests } from '../../support/rbd-guest';

const rbd = useRbdGuests();

async function createRbdGuest(options: Parameters<typeof createRealGuest>[0]): Promise<InstanceFixture> {
  return createRealGuest({ ...options, ...rbd().guestOptions() });
}

/** Nothing of ours is left: nothing in the cluster but what the chain records (here: nothing), no work dir under the snapshots directory. */
async function expectNothingLeft(engine: Engine, fixture: InstanceFixture): Promise<void> {
  expect(await rbdLeftovers(rbd().cluster, fixture, engine.store.chain)).toEqual([]);
  // A live run's close answers before its work dir is gone: the removals under way end first.
  await engine.host.workDirs.settled();
  expect(await readdir(engine.hostConfig.snapshotsDir).catch(() => [])).toEqual([]);
}

describe('snapshots of real guests on RBD disks', () => {
  let engine: Engine;
  beforeAll(async () => {
    // Ceph's change tracking off: every live snapshot is a full backup job, which leaves nothing on
    // the disk. With it on (the default), rbd-incremental.test.ts.
    engine = await startEngine({ hostEnv: { ...rbd().hostEnv, SNAP_RBD_CHANGE_TRACKING: 'false' } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('live: the backup job reads the RBD disk, quiesced; the image is a clean ext4 with the log contiguous, the guest writes on', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const xml = await fixture.client.domainGetXMLDesc(fixture.instance.domain, 0);
      expect(xml).toContain(`<source protocol='rbd' name='vms/${fixture.instance.uuid ?? ''}_disk'`);
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: true, dataPath: 'backup-job', kind: 'full' });
      expect(run.result?.fullReason).toMatch(/RBD/);
      expect(run.state).toBe(DomainState.Running);
      await expectCleanRawImage(engine, run);
      await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 1);
      await expectNothingLeft(engine, fixture);
    } finally {
      await fixture.cleanup();
    }
  });

  it('paused: cold through managedSave and a read-only qemu-nbd of the stopped image; comes back paused', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 }, pauseWhenReady: true });
    try {
      const run = await snapshotRealGuest(engine, fixture, POWER_STATE_PAUSED);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'qemu-nbd' });
      expect(run.state).toBe(DomainState.Paused);
      expect(await fixture.client.domainHasManagedSaveImage(fixture.instance.domain)).toBe(false);
      await expectCleanRawImage(engine, run);
      await expectNothingLeft(engine, fixture);
    } finally {
      await fixture.cleanup();
    }
  });

  it('shut off: stays off, and the image is identical to the RBD disk', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const { run, file } = await snapshotShutOffGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'cold', dataPath: 'qemu-nbd' });
      expect(run.state).toBe(DomainState.Shutoff);
      const rbdDisk = fixture.instance.rbd;
      if (rbdDisk === null || file === null) throw new Error('no RBD disk or no image');
      const compared = await runToolOutput('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', file, rbdTarget(rbdDisk)], { okExitCodes: [0, 1] });
      expect(compared.exitCode).toBe(0);
      await expectNothingLeft(engine, fixture);
    } finally {
      await fixture.cleanup();
    }
  });
});

describe('cold snapshots of running RBD guests (live snapshots disabled, as Nova\'s disable_libvirt_livesnapshot)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ hostEnv: { ...rbd().hostEnv, SNAP_DISABLE_LIVE_SNAPSHOT: 'true' } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('running: managed-saved, restarted with a backup job on the RBD disk holding the save, running as the same kernel; a clean image', async () => {
    const fixture = await createRbdGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'backup-job', quiesced: false });
      expect(run.state).toBe(DomainState.Running);
      expect(await fixture.client.domainHasManagedSaveImage(fixture.instance.domain)).toBe(false);
      const fsyncedAtRestore = lastFsynced(await readConsole(fixture.instance.consolePath), 'log');
      await waitForFsynced(fixture.instance.consolePath, 'log', fsyncedAtRestore + 2);
      await expectCleanRawImage(engine, run);
      await expectNothingLeft(engine, fixture);
    } finally {
      await fixture.cleanup();
    }
  });
});
