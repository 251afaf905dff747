// A cold run terminated right after its managedSave (Temporal terminate: no compensation runs), its
// host worker killed: nothing of the run restores the guest, which stays shut off with its save.
// The next host worker's start-up sweep finds the closed run's saved marker and starts the guest
// from its save: the same kernel goes on (same boot_id, the writer's counter continues, no second
// boot) and its disk holds a clean filesystem with every record the guest made durable, before
// the save and after. In the same sweep, a guest an operator managed-saved by hand stays saved.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POWER_STATE_RUNNING } from '../../../src/contract';
import { readGuestMarker } from '../../../src/host/guest-markers';
import { SnapshotWorkDirs } from '../../../src/host/snapshot-workdir';
import { DomainState } from '../../../src/libvirt';
import { guestExec } from '../../../src/testing/guest/guest-agent';
import { bootIds, readConsole } from '../../../src/testing/guest/guest-console';
import { withGuestImage } from '../../../src/testing/guest/guest-image-reader';
import { lastFsynced, verifyAppendLog } from '../../../src/testing/guest/workload-verifiers';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';
import { createRealGuest, waitForFsynced } from '../../support/guest/real-guest-run';
import { createInstanceFixture, type InstanceFixture } from '../../support/instance-fixture';
import { waitForFile } from '../../support/wait-for-file';

const MiB = 1024 * 1024;

async function guestState(fixture: InstanceFixture): Promise<{ state: DomainState; saved: boolean }> {
  const dom = await fixture.client.domainLookupByName(fixture.instance.name);
  const { state } = await fixture.client.domainGetState(dom);
  return { state, saved: await fixture.client.domainHasManagedSaveImage(dom) };
}

async function bootId(fixture: InstanceFixture): Promise<string> {
  return (await guestExec(fixture.client, fixture.instance.domain, '/bin/cat', ['/proc/sys/kernel/random/boot_id'], { timeoutMs: 20_000 })).stdout.trim();
}

async function fsyncedOnConsole(fixture: InstanceFixture): Promise<number> {
  return lastFsynced(await readConsole(fixture.instance.consolePath), 'log');
}

describe('a guest a terminated cold run left managed-saved', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack({ liveDisabled: true });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it("is started from its save by the next host worker's sweep, running on with its disk whole; a guest saved by hand stays saved", async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapsaved', diskSizeBytes: 128 * MiB, linux: { workload: 'log', rateKiB: 256 } });
    const byHand = await createInstanceFixture({ prefix: 'snaptest-byhand' });
    const hold = join(stack.barrierDir, 'extract.hold');
    const reached = join(stack.barrierDir, 'extract.reached');
    let imageId: string | undefined;
    try {
      const { uuid } = await stack.register(fixture, POWER_STATE_RUNNING);
      const bootBefore = await bootId(fixture);
      await rm(reached, { force: true });
      await writeFile(hold, '');
      const snap = await stack.startSnapshot(uuid);
      imageId = snap.imageId;
      const handle = stack.client.workflow.getHandle(snap.workflowId);

      // Saved by prepare_cold; the next step (the export) held before it runs.
      await waitForFile(reached, 180_000);
      expect(await guestState(fixture)).toEqual({ state: DomainState.Shutoff, saved: true });
      const { runId } = await handle.describe();
      const workDir = new SnapshotWorkDirs(stack.snapshotsDir).pathFor(runId);
      expect(await readGuestMarker(workDir, 'saved')).toEqual({ domainUuid: fixture.instance.domain.uuid, domainName: fixture.instance.name, powerState: POWER_STATE_RUNNING });
      const fsyncedAtSave = await fsyncedOnConsole(fixture);

      await handle.terminate('test: abandon the run right after the managedSave');
      await stack.hostWorker.kill();
      await rm(hold, { force: true });
      // The operator's own save, while no host worker runs: no run of ours holds it.
      await byHand.client.domainManagedSave(byHand.instance.domain, 0);
      // Nothing of the run is left to restore the guest: no compensation, no worker.
      await new Promise((r) => setTimeout(r, 2_000));
      expect(await guestState(fixture)).toEqual({ state: DomainState.Shutoff, saved: true });

      // The host worker's start-up sweep runs before it polls.
      await stack.hostWorker.start();
      expect(await guestState(fixture)).toEqual({ state: DomainState.Running, saved: false });
      expect(await guestState(byHand)).toEqual({ state: DomainState.Shutoff, saved: true });
      expect((await readdir(stack.snapshotsDir)).filter((n) => n.startsWith('snap-'))).toEqual([]);

      // Restored from the save, not booted again: the same kernel, its writer going on from where it was.
      const fsyncedAfter = await waitForFsynced(fixture.instance.consolePath, 'log', fsyncedAtSave + 2, 60_000);
      const consoleText = await readConsole(fixture.instance.consolePath);
      expect(bootIds(consoleText)).toEqual([bootBefore]);
      expect([...consoleText.matchAll(/^SNAPWL \w+ started/gm)]).toHaveLength(1);
      expect(await bootId(fixture)).toBe(bootBefore);

      // The disk holds a clean filesystem and every record made durable before the save and since.
      await fixture.client.domainDestroy(await fixture.client.domainLookupByName(fixture.instance.name));
      const disk = await withGuestImage(fixture.instance.overlayPath, fixture.dir, async (img) => ({ fsck: await img.fsck(), log: verifyAppendLog(await img.readFile('log'), { minRecords: fsyncedAfter }) }));
      expect({ clean: disk.fsck.clean, output: disk.fsck.output }).toMatchObject({ clean: true });
      expect(disk.log.records).toBeGreaterThanOrEqual(fsyncedAfter);
    } finally {
      await rm(hold, { force: true });
      // The terminated run's queued image: the control side's reconciler would delete it.
      if (imageId !== undefined) await stack.images.delete(imageId).catch(() => undefined);
      await byHand.cleanup();
      await fixture.cleanup();
    }
  }, 420_000);
});
