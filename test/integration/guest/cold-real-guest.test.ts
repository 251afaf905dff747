// Cold snapshots of real Linux guests: a running guest is managed-saved and comes back as the same
// kernel (same boot_id, the writer's counter goes on, no second boot), before its disk streams
// (restarted from the save with a backup job holding the save's point in time); a paused one comes
// back paused, a shut-off one stays off (both read through a read-only qemu-nbd: no downtime to
// shorten); every image is a clean ext4 whose workload verifies.
import { DomainState } from '../../../src/libvirt';
import { POWER_STATE_PAUSED } from '../../../src/contract';
import { imagesIdentical } from '../../../src/host/qemu-img';
import { guestExec } from '../../../src/testing/guest/guest-agent';
import { bootIds, readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';
import { startEngine, type Engine } from '../../support/engine-harness';
import { createRealGuest, snapshotRealGuest, snapshotShutOffGuest, verifySnapshotImage, waitForFsynced } from '../../support/guest/real-guest-run';

function workloadStarts(consoleText: string): number {
  return [...consoleText.matchAll(/^SNAPWL \w+ started/gm)].length;
}

describe('cold snapshots of real guests', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ hostEnv: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true' } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('running: restored from its managed save, not rebooted — same boot_id, the writer goes on from where it was', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const dom = fixture.instance.domain;
      const bootBefore = (await guestExec(fixture.client, dom, '/bin/cat', ['/proc/sys/kernel/random/boot_id'], { timeoutMs: 20_000 })).stdout.trim();
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      // One pass: the save's point in time held by a backup job on the restarted guest, streamed into the image service.
      expect(run.result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'backup-job', quiesced: false });
      expect(run.state).toBe(DomainState.Running);
      expect(await fixture.client.domainHasManagedSaveImage(dom)).toBe(false);

      const fsyncedAtRestore = lastFsynced(await readConsole(fixture.instance.consolePath), 'log');
      expect(fsyncedAtRestore).toBeGreaterThanOrEqual(run.fsyncedBefore);
      await waitForFsynced(fixture.instance.consolePath, 'log', fsyncedAtRestore + 2);
      const consoleText = await readConsole(fixture.instance.consolePath);
      expect(bootIds(consoleText)).toEqual([bootBefore]);
      expect(workloadStarts(consoleText)).toBe(1);
      const bootAfter = (await guestExec(fixture.client, dom, '/bin/cat', ['/proc/sys/kernel/random/boot_id'], { timeoutMs: 20_000 })).stdout.trim();
      expect(bootAfter).toBe(bootBefore);

      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
      expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
      expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
    } finally {
      await fixture.cleanup();
    }
  });

  it('paused with a running kernel: comes back paused, image clean and whole', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'blocks', rateKiB: 1024 }, pauseWhenReady: true });
    try {
      const run = await snapshotRealGuest(engine, fixture, POWER_STATE_PAUSED);
      expect(run.error).toBeUndefined();
      expect(run.result?.mode).toBe('cold');
      expect(run.state).toBe(DomainState.Paused);
      expect(await fixture.client.domainHasManagedSaveImage(fixture.instance.domain)).toBe(false);
      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
    } finally {
      await fixture.cleanup();
    }
  });

  it('shut off: stays off, and the image is identical to the disk', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const { run, file } = await snapshotShutOffGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'cold', dataPath: 'qemu-nbd' });
      expect(run.state).toBe(DomainState.Shutoff);
      expect(await imagesIdentical(file ?? '', fixture.instance.overlayPath)).toBe(true);
      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
      expect(image.log?.records).toBeGreaterThanOrEqual(4);
    } finally {
      await fixture.cleanup();
    }
  });
});
