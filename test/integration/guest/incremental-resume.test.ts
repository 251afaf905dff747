// kill -9 of the host worker in the middle of an incremental: the worker back a few seconds later,
// the snapshot goes on from the service's committed length on the same backup job (the same
// changed extents, recorded with the export), and ends incremental, identical to the frozen copy
// of the disk at its point in time, on a guest that keeps writing its log meanwhile.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POWER_STATE_RUNNING, type SnapshotResult } from '../../../src/contract';
import { checkEndState } from '../../support/fault-checks';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';
import { frozenCopy, guestWrites, imageMatchesFrozen, settle } from '../../support/guest/chain-checks';
import { createRealGuest, fsyncedNow, guestOf, verifyGuestImage } from '../../support/guest/real-guest-run';
import { waitForFile } from '../../support/wait-for-file';

const MiB = 1024 * 1024;
const LIMIT_MIBS = 6;
const CHANGED_MIB = 36;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('incremental: a host worker killed mid-stream', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack({ hostEnv: { SNAP_STREAM_BWLIMIT_MIBS: String(LIMIT_MIBS) } });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('resumes the incremental from the committed length; the image is the disk at its point in time', async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapincres', diskSizeBytes: 128 * MiB, linux: { workload: 'idle' } });
    const hold = join(stack.barrierDir, 'upload.hold');
    const reached = join(stack.barrierDir, 'upload.reached');
    try {
      const instance = await stack.register(fixture, POWER_STATE_RUNNING);
      await guestWrites(fixture, 'base.bin', 8);
      const first = await stack.startSnapshot(instance.uuid);
      const full: SnapshotResult = await stack.client.workflow.getHandle(first.workflowId).result();
      expect(full.kind).toBe('full');

      await guestWrites(fixture, 'changed.bin', CHANGED_MIB);
      await settle(fixture);
      const frozen = await frozenCopy(fixture, 'incremental');
      await rm(reached, { force: true });
      await writeFile(hold, '');
      const fsyncedBefore = await fsyncedNow(fixture);
      const snap = await stack.startSnapshot(instance.uuid);
      await waitForFile(reached, 180_000);
      await rm(hold, { force: true });
      await sleep((CHANGED_MIB / 2 / LIMIT_MIBS) * 1000);
      await stack.hostWorker.kill();
      await sleep(1_000);
      const staged = await stack.images.stagedUpload(snap.imageId);
      expect(staged?.offset).toBeGreaterThan(0);
      await stack.hostWorker.start();

      const result: SnapshotResult = await stack.client.workflow.getHandle(snap.workflowId).result();
      expect(result).toMatchObject({ kind: 'incremental', parentImageId: full.imageId, status: 'active' });
      expect(result.resumedFrom).toBeGreaterThanOrEqual(staged?.offset ?? Number.MAX_SAFE_INTEGER);
      expect(result.changedBytes).toBeLessThan((CHANGED_MIB + 4) * MiB);
      expect(await imageMatchesFrozen(stack.images, snap.imageId, frozen, fixture.dir)).toMatchObject({ identical: true });
      const image = await verifyGuestImage(stack.images, snap.imageId, guestOf(fixture), fsyncedBefore);
      expect(image.fsckClean).toBe(true);
      expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
      const violations = await checkEndState(stack, fixture, {
        imageId: snap.imageId,
        workflowId: snap.workflowId,
        completed: true,
        priorPowerState: POWER_STATE_RUNNING,
        instanceDeleted: false,
        fsyncedBefore,
      });
      expect(violations).toEqual([]);
    } finally {
      await rm(hold, { force: true });
      await fixture.cleanup();
    }
  }, 360_000);
});
