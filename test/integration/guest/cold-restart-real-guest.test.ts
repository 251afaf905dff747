// A cold snapshot of a running, writing guest that comes back before its disk streams (the
// default; SNAP_COLD_RESUME_BEFORE_STREAM=false keeps the seed's path): managedSave, restarted paused
// from the save with a backup job on its disk, resumed, streamed from the job. The image is the disk
// at the save (its logical digest is the one of the disk read while the guest was saved), the guest
// runs and writes on while the stream runs, and a host worker killed mid-stream leaves the guest
// running and nothing of ours: the retry, a named upload as every full snapshot, sends only the
// chunks the service lacks. A run terminated between the restart and the resume, its host worker
// killed, leaves the guest paused only until a host worker starts: its sweep resumes it.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POWER_STATE_RUNNING, type SnapshotResult } from '../../../src/contract';
import { currentBackupJob } from '../../../src/host/backup-export';
import { DomainState, Libvirt } from '../../../src/libvirt';
import { guestExec } from '../../../src/testing/guest/guest-agent';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';
import { checkEndState } from '../../support/fault-checks';
import { namedChunkBytes, resendViolations } from '../../support/named-resume';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';
import { createRealGuest, fsyncedNow, guestOf, logicalDigestOfFile, verifyGuestImage, waitForFsynced } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { waitForFile } from '../../support/wait-for-file';

const MiB = 1024 * 1024;
/** slow enough that the guest writes during the stream and a kill lands mid-stream */
const LIMIT_MIBS = 6;
const FILL_MIB = 40;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function guestState(fixture: InstanceFixture): Promise<{ state: DomainState; saved: boolean }> {
  const dom = await fixture.client.domainLookupByName(fixture.instance.name);
  const { state } = await fixture.client.domainGetState(dom);
  return { state, saved: await fixture.client.domainHasManagedSaveImage(dom) };
}

/** What the end-state checks do not look at: a backup job of the run left on the domain. */
async function backupJobLeft(fixture: InstanceFixture): Promise<boolean> {
  const client = await Libvirt.connect(fixture.client.uri);
  try {
    return (await currentBackupJob(client, await client.domainLookupByName(fixture.instance.name))) !== null;
  } finally {
    await client.close();
  }
}

async function fsyncedOnConsole(fixture: InstanceFixture): Promise<number> {
  return lastFsynced(await readConsole(fixture.instance.consolePath), 'log');
}

/** A writing guest with FILL_MIB of data on its disk for the stream to carry, registered running. */
async function fillingGuest(stack: FaultStack, prefix: string): Promise<{ fixture: InstanceFixture; uuid: string }> {
  const fixture = await createRealGuest({ prefix, diskSizeBytes: 128 * MiB, linux: { workload: 'log', rateKiB: 256 } });
  try {
    // Random: every chunk of it travels (a chunk of zeros is named, not sent).
    await guestExec(fixture.client, fixture.instance.domain, '/bin/dd', ['if=/dev/urandom', 'of=/mnt/fill', 'bs=1M', `count=${FILL_MIB}`, 'conv=fsync'], { timeoutMs: 120_000 });
    const instance = await stack.register(fixture, POWER_STATE_RUNNING);
    return { fixture, uuid: instance.uuid };
  } catch (err) {
    await fixture.cleanup();
    throw err;
  }
}

describe('cold snapshot of a running guest, resumed before the stream', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack({ liveDisabled: true, hostEnv: { SNAP_STREAM_BWLIMIT_MIBS: String(LIMIT_MIBS) } });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  const barrier = (step: string) => ({ hold: join(stack?.barrierDir ?? '', `${step}.hold`), reached: join(stack?.barrierDir ?? '', `${step}.reached`) });

  it('the image is the disk at the save; the guest is down for the save and restore only, and writes on during the stream', async () => {
    if (!stack) throw new Error('fault stack did not start');
    const { fixture, uuid } = await fillingGuest(stack, 'snapcoldre');
    const extract = barrier('extract');
    const upload = barrier('upload');
    const events: string[] = [];
    try {
      for (const b of [extract, upload]) {
        await rm(b.reached, { force: true });
        await writeFile(b.hold, '');
      }
      const fsyncedBefore = await fsyncedNow(fixture);
      const snap = await stack.startSnapshot(uuid);
      const handle = stack.client.workflow.getHandle(snap.workflowId);

      // Saved, before the export: the disk as the save left it is what the image must hold.
      await waitForFile(extract.reached, 180_000);
      const atSave = await guestState(fixture);
      if (atSave.state === DomainState.Shutoff && atSave.saved) events.push('saved');
      const diskAtSave = await logicalDigestOfFile(fixture.instance.overlayPath, fixture.dir, 'qcow2');
      await rm(extract.hold, { force: true });

      // The export is open and the stream not begun: the guest already runs, and writes.
      await waitForFile(upload.reached, 180_000);
      if ((await guestState(fixture)).state === DomainState.Running) events.push('running before the stream');
      const atStreamStart = await waitForFsynced(fixture.instance.consolePath, 'log', (await fsyncedOnConsole(fixture)) + 1);
      await rm(upload.hold, { force: true });
      events.push('stream started');

      // While the stream runs (about FILL_MIB / LIMIT_MIBS seconds), the guest makes records durable.
      const duringStream = handle.result().then((r: SnapshotResult) => {
        events.push('snapshot done');
        return r;
      });
      await waitForFsynced(fixture.instance.consolePath, 'log', atStreamStart + 1, 60_000);
      if (!events.includes('snapshot done')) events.push('guest wrote during the stream');
      const result = await duringStream;
      const fsyncedAfter = await fsyncedOnConsole(fixture);

      expect(events).toEqual(['saved', 'running before the stream', 'stream started', 'guest wrote during the stream', 'snapshot done']);
      expect(result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'backup-job', quiesced: false });
      expect(result.steps).toHaveProperty('restore_guest');

      const image = await verifyGuestImage(stack.images, snap.imageId, guestOf(fixture), fsyncedBefore);
      // The bytes are the save's, not the running guest's later writes.
      expect(image.logicalDigest?.stored).toBe(diskAtSave);
      expect(image.logicalDigest?.downloaded).toBe(diskAtSave);
      expect({ clean: image.fsckClean, output: image.fsckOutput }).toMatchObject({ clean: true });
      expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, fsyncedBefore));
      expect(image.log?.records).toBeLessThan(fsyncedAfter);

      const violations = await checkEndState(stack, fixture, { imageId: snap.imageId, workflowId: snap.workflowId, completed: true, priorPowerState: POWER_STATE_RUNNING, instanceDeleted: false, fsyncedBefore });
      expect(violations).toEqual([]);
      expect(await backupJobLeft(fixture)).toBe(false);
    } finally {
      for (const b of [extract, upload]) await rm(b.hold, { force: true });
      await fixture.cleanup();
    }
  }, 420_000);

  it('a host worker killed mid-stream: the guest runs on, the retry finishes on the same job sending only what the service lacks, nothing of ours is left', async () => {
    if (!stack) throw new Error('fault stack did not start');
    const { fixture, uuid } = await fillingGuest(stack, 'snapcoldkill');
    const upload = barrier('upload');
    try {
      await rm(upload.reached, { force: true });
      await writeFile(upload.hold, '');
      const fsyncedBefore = await fsyncedNow(fixture);
      const atStart = stack.proxy.bodyBytes;
      const snap = await stack.startSnapshot(uuid);
      const handle = stack.client.workflow.getHandle(snap.workflowId);
      await waitForFile(upload.reached, 180_000);
      await rm(upload.hold, { force: true });
      // About half of the image at the limit, then the worker dies with the stream in flight.
      await sleep((FILL_MIB / 2 / LIMIT_MIBS) * 1000);
      await stack.hostWorker.kill();
      // No worker: the guest runs and writes all the same.
      const whileDead = await fsyncedOnConsole(fixture);
      await waitForFsynced(fixture.instance.consolePath, 'log', whileDead + 1, 60_000);
      expect((await guestState(fixture)).state).toBe(DomainState.Running);
      const atRestart = stack.proxy.bodyBytes;
      await stack.hostWorker.start();

      const result: SnapshotResult = await handle.result();
      expect(result).toMatchObject({ mode: 'cold', status: 'active', dataPath: 'backup-job' });
      const received = { beforeKill: atRestart - atStart, onRetry: stack.proxy.bodyBytes - atRestart };
      expect(resendViolations(received, await namedChunkBytes(stack.images, snap.imageId, fixture.dir))).toEqual([]);

      const violations = await checkEndState(stack, fixture, { imageId: snap.imageId, workflowId: snap.workflowId, completed: true, priorPowerState: POWER_STATE_RUNNING, instanceDeleted: false, fsyncedBefore });
      expect(violations).toEqual([]);
      expect(await backupJobLeft(fixture)).toBe(false);
    } finally {
      await rm(upload.hold, { force: true });
      await fixture.cleanup();
    }
  }, 420_000);

  it('terminated between the restart and the resume, its host worker killed: the next host worker resumes the guest, which writes on', async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapcoldterm', diskSizeBytes: 128 * MiB, linux: { workload: 'log', rateKiB: 256 } });
    const resume = barrier('resume_guest');
    let imageId: string | undefined;
    try {
      const { uuid } = await stack.register(fixture, POWER_STATE_RUNNING);
      await rm(resume.reached, { force: true });
      await writeFile(resume.hold, '');
      const snap = await stack.startSnapshot(uuid);
      imageId = snap.imageId;
      // Restarted paused from the save, the job on its disk, the resume held.
      await waitForFile(resume.reached, 180_000);
      expect(await guestState(fixture)).toEqual({ state: DomainState.Paused, saved: false });
      await stack.client.workflow.getHandle(snap.workflowId).terminate('test: abandon the run between the restart and the resume');
      await stack.hostWorker.kill();
      await rm(resume.hold, { force: true });
      // Nothing of the run is left to resume it: no compensation, no worker.
      await sleep(2_000);
      expect((await guestState(fixture)).state).toBe(DomainState.Paused);
      const pausedAt = await fsyncedOnConsole(fixture);

      await stack.hostWorker.start();
      expect(await guestState(fixture)).toEqual({ state: DomainState.Running, saved: false });
      await waitForFsynced(fixture.instance.consolePath, 'log', pausedAt + 2, 60_000);
      expect(await backupJobLeft(fixture)).toBe(false);
      expect((await readdir(stack.snapshotsDir)).filter((n) => n.startsWith('snap-'))).toEqual([]);
    } finally {
      await rm(resume.hold, { force: true });
      // The terminated run's queued image: the control side's reconciler would delete it; the next test must not see it.
      if (imageId !== undefined) await stack.images.delete(imageId).catch(() => undefined);
      await fixture.cleanup();
    }
  }, 420_000);
});
