// kill -9 of the host worker between an incremental's close and its retention, which one activity
// does back to back (closeExportAndRetain): the backup job is already gone, both checkpoints (the
// parent's and the new one) are on the domain, the work dir is still there. The worker back, the
// retry finds nothing to close, retains, and the run ends incremental; one checkpoint is left, no
// work dir, and the next snapshot builds on the new one.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POWER_STATE_RUNNING, type SnapshotResult } from '../../../src/contract';
import { currentBackupJob } from '../../../src/host/backup-export';
import { checkEndState } from '../../support/fault-checks';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';
import { frozenCopy, guestWrites, imageMatchesFrozen, settle } from '../../support/guest/chain-checks';
import { createRealGuest, fsyncedNow } from '../../support/guest/real-guest-run';
import { waitForFile } from '../../support/wait-for-file';

const MiB = 1024 * 1024;

describe('incremental: a host worker killed between the close and the retention', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack();
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('the retry retains; the run ends incremental with one checkpoint left, and the next one builds on it', async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapretcrash', diskSizeBytes: 128 * MiB, linux: { workload: 'idle' } });
    const hold = join(stack.barrierDir, 'retain_checkpoints.hold');
    const reached = join(stack.barrierDir, 'retain_checkpoints.reached');
    const checkpoints = async () => (await fixture.client.checkpoints.listAll(fixture.instance.domain)).map((c) => c.name).sort();
    try {
      const instance = await stack.register(fixture, POWER_STATE_RUNNING);
      await guestWrites(fixture, 'base.bin', 8);
      const first = await stack.startSnapshot(instance.uuid);
      const full: SnapshotResult = await stack.client.workflow.getHandle(first.workflowId).result();
      expect(full).toMatchObject({ kind: 'full', status: 'active' });
      expect(full.steps).toHaveProperty('close_and_retain');
      const parentCheckpoint = (await stack.store.chain.get(full.imageId))?.checkpoint;
      expect(await checkpoints()).toEqual([parentCheckpoint]);

      await guestWrites(fixture, 'changed.bin', 4);
      await settle(fixture);
      const frozen = await frozenCopy(fixture, 'incremental');
      await rm(reached, { force: true });
      await writeFile(hold, '');
      const fsyncedBefore = await fsyncedNow(fixture);
      const snap = await stack.startSnapshot(instance.uuid);
      await waitForFile(reached, 180_000);
      // Held inside the step: closed (no job of ours), nothing retained yet.
      expect(await currentBackupJob(fixture.client, fixture.instance.domain)).toBeNull();
      const both = await checkpoints();
      expect(both).toHaveLength(2);
      expect(both).toContain(parentCheckpoint);
      await stack.hostWorker.kill();
      await rm(hold, { force: true });
      await stack.hostWorker.start();

      const result: SnapshotResult = await stack.client.workflow.getHandle(snap.workflowId).result();
      expect(result).toMatchObject({ kind: 'incremental', parentImageId: full.imageId, status: 'active' });
      expect(await imageMatchesFrozen(stack.images, snap.imageId, frozen, fixture.dir)).toMatchObject({ identical: true });
      const row = await stack.store.chain.get(snap.imageId);
      expect(row?.checkpointXml).toContain(`<name>${row?.checkpoint}</name>`);
      expect(await checkpoints()).toEqual([row?.checkpoint]);
      const violations = await checkEndState(stack, fixture, {
        imageId: snap.imageId,
        workflowId: snap.workflowId,
        completed: true,
        priorPowerState: POWER_STATE_RUNNING,
        instanceDeleted: false,
        fsyncedBefore,
      });
      expect(violations).toEqual([]);

      await guestWrites(fixture, 'after.bin', 2);
      const next = await stack.startSnapshot(instance.uuid);
      const after: SnapshotResult = await stack.client.workflow.getHandle(next.workflowId).result();
      expect(after).toMatchObject({ kind: 'incremental', parentImageId: snap.imageId, status: 'active' });
    } finally {
      await rm(hold, { force: true });
      await fixture.cleanup();
    }
  }, 480_000);
});
