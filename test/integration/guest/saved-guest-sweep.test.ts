// A cold run terminated while its guest is managed-saved (Temporal terminate: no compensation runs),
// its host worker killed: nothing of the run restores the guest, which stays shut off with its
// save. The next host worker's start-up sweep finds the closed run's saved marker and starts the
// guest from its save: the same kernel goes on (same boot_id, the writer's counter continues, no
// second boot) and its disk holds a clean filesystem with every record the guest made durable,
// before the save and after. In the same sweep, a guest an operator managed-saved by hand stays
// saved. The stack reads the stopped disk as the seed does (SNAP_COLD_RESUME_BEFORE_STREAM=false),
// so a run terminated mid-read leaves its qemu-nbd holding the disk: the sweep ends it first.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { POWER_STATE_RUNNING } from '../../../src/contract';
import { exportPaths } from '../../../src/host/export-paths';
import { readGuestMarker } from '../../../src/host/guest-markers';
import { findReadOnlyExport, isQemuNbdServing } from '../../../src/host/nbd-export';
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

/** Whether `pid` is a qemu-nbd serving `socketPath` (a zombie's cmdline is empty). */
async function servesSocket(pid: number, socketPath: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return isQemuNbdServing(cmdline.split('\0').filter((a) => a !== ''), socketPath);
}

/** The guest was restored from its save, not booted again: one boot, one workload start, its writer going on. */
async function expectSameKernelWritingOn(fixture: InstanceFixture, bootBefore: string, fsyncedAtSave: number): Promise<number> {
  const fsynced = await waitForFsynced(fixture.instance.consolePath, 'log', fsyncedAtSave + 2, 60_000);
  const consoleText = await readConsole(fixture.instance.consolePath);
  expect(bootIds(consoleText)).toEqual([bootBefore]);
  expect([...consoleText.matchAll(/^SNAPWL \w+ started/gm)]).toHaveLength(1);
  expect(await bootId(fixture)).toBe(bootBefore);
  return fsynced;
}

describe('a guest a terminated cold run left managed-saved', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack({ liveDisabled: true, hostEnv: { SNAP_COLD_RESUME_BEFORE_STREAM: 'false' } });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  interface HeldRun {
    handle: WorkflowHandle;
    imageId: string;
    workDir: string;
    bootBefore: string;
    fsyncedAtSave: number;
  }

  /** A cold snapshot of the running guest, held before `step` with the guest saved; its saved marker checked. */
  async function runHeldAt(fixture: InstanceFixture, step: string): Promise<HeldRun> {
    if (!stack) throw new Error('fault stack did not start');
    const { uuid } = await stack.register(fixture, POWER_STATE_RUNNING);
    const bootBefore = await bootId(fixture);
    await rm(join(stack.barrierDir, `${step}.reached`), { force: true });
    await writeFile(join(stack.barrierDir, `${step}.hold`), '');
    const snap = await stack.startSnapshot(uuid);
    const handle = stack.client.workflow.getHandle(snap.workflowId);
    await waitForFile(join(stack.barrierDir, `${step}.reached`), 180_000);
    expect(await guestState(fixture)).toEqual({ state: DomainState.Shutoff, saved: true });
    const workDir = new SnapshotWorkDirs(stack.snapshotsDir).pathFor((await handle.describe()).runId);
    expect(await readGuestMarker(workDir, 'saved')).toEqual({ domainUuid: fixture.instance.domain.uuid, domainName: fixture.instance.name, powerState: POWER_STATE_RUNNING });
    return { handle, imageId: snap.imageId, workDir, bootBefore, fsyncedAtSave: await fsyncedOnConsole(fixture) };
  }

  /** Terminated, its host worker killed, the step let go: nothing of the run is left to restore the guest. */
  async function abandon(run: HeldRun, step: string): Promise<void> {
    if (!stack) throw new Error('fault stack did not start');
    await run.handle.terminate(`test: abandon the run held before ${step}, its guest saved`);
    await stack.hostWorker.kill();
    await rm(join(stack.barrierDir, `${step}.hold`), { force: true });
  }

  async function workDirsLeft(): Promise<string[]> {
    return (await readdir(stack?.snapshotsDir ?? '')).filter((n) => n.startsWith('snap-'));
  }

  afterEach(async () => {
    for (const step of ['extract', 'upload']) await rm(join(stack?.barrierDir ?? '', `${step}.hold`), { force: true });
    // The terminated run's queued image: the control side's reconciler would delete it; the next test must not see it.
    for (const image of (await stack?.images.list()) ?? []) if (image.status !== 'active') await stack?.images.delete(image.id).catch(() => undefined);
  });

  it("right after the managedSave: started from its save by the next host worker's sweep, running on with its disk whole; a guest saved by hand stays saved", async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapsaved', diskSizeBytes: 128 * MiB, linux: { workload: 'log', rateKiB: 256 } });
    const byHand = await createInstanceFixture({ prefix: 'snaptest-byhand' });
    try {
      // Saved by prepare_cold; the next step (the read of the stopped disk) held before it runs.
      const run = await runHeldAt(fixture, 'extract');
      await abandon(run, 'extract');
      // The operator's own save, while no host worker runs: no run of ours holds it.
      await byHand.client.domainManagedSave(byHand.instance.domain, 0);
      await new Promise((r) => setTimeout(r, 2_000));
      expect(await guestState(fixture)).toEqual({ state: DomainState.Shutoff, saved: true });

      // The host worker's start-up sweep runs before it polls.
      await stack.hostWorker.start();
      expect(await guestState(fixture)).toEqual({ state: DomainState.Running, saved: false });
      expect(await guestState(byHand)).toEqual({ state: DomainState.Shutoff, saved: true });
      expect(await workDirsLeft()).toEqual([]);
      const fsyncedAfter = await expectSameKernelWritingOn(fixture, run.bootBefore, run.fsyncedAtSave);

      // The disk holds a clean filesystem and every record made durable before the save and since.
      await fixture.client.domainDestroy(await fixture.client.domainLookupByName(fixture.instance.name));
      const disk = await withGuestImage(fixture.instance.overlayPath, fixture.dir, async (img) => ({ fsck: await img.fsck(), log: verifyAppendLog(await img.readFile('log'), { minRecords: fsyncedAfter }) }));
      expect({ clean: disk.fsck.clean, output: disk.fsck.output }).toMatchObject({ clean: true });
      expect(disk.log.records).toBeGreaterThanOrEqual(fsyncedAfter);
    } finally {
      await byHand.cleanup();
      await fixture.cleanup();
    }
  }, 420_000);

  it("mid-read, its qemu-nbd holding the disk: the sweep ends the export, then starts the guest from its save", async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapsavednbd', diskSizeBytes: 128 * MiB, linux: { workload: 'log', rateKiB: 256 } });
    try {
      // The stopped disk exported read-only, the stream held before it begins.
      const run = await runHeldAt(fixture, 'upload');
      const paths = exportPaths(run.workDir);
      await abandon(run, 'upload');
      // qemu-nbd outlives the worker that started it, and holds the disk.
      const pid = await findReadOnlyExport(paths);
      if (pid === undefined) throw new Error('no qemu-nbd serving the held run');
      expect(await guestState(fixture)).toEqual({ state: DomainState.Shutoff, saved: true });

      await stack.hostWorker.start();
      expect(await guestState(fixture)).toEqual({ state: DomainState.Running, saved: false });
      expect(await servesSocket(pid, paths.socketPath)).toBe(false);
      expect(await workDirsLeft()).toEqual([]);
      await expectSameKernelWritingOn(fixture, run.bootBefore, run.fsyncedAtSave);
    } finally {
      await fixture.cleanup();
    }
  }, 420_000);
});
