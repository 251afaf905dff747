// Nova's backup_instance as the snapshot workflow with a `backup` input (stubbed activities, real
// Temporal): task_state goes through image_backup (and a run expecting image_snapshot would be
// refused by the stub's compare-and-set), rotation runs once the image is active, after
// snapshot.end, a failed backup rotates nothing, and a rotation that fails once is retried.
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, snapshotWorkflowId, type SnapshotInput, type SnapshotResult } from '../../../src/contract';
import type { FakeInstance, FakeInstanceOptions } from '../../support/stubs/fake-cloud';
import { startStubEnvironment, type StubEnvironment } from '../../support/stubs/stub-workers';

let env: StubEnvironment;
beforeAll(async () => {
  env = await startStubEnvironment();
});
afterAll(async () => {
  await env?.stop();
});

const BACKUP = { backupType: 'daily', rotation: 2 };

async function backup(options: Omit<FakeInstanceOptions, 'uuid'>, viaApi = true, spec = BACKUP): Promise<{ inst: FakeInstance; result?: SnapshotResult; error?: Error }> {
  const uuid = randomUUID();
  // The API's createBackup leaves the instance in image_backup (Nova's backup()).
  const inst = env.cloud.add({ uuid, taskState: viaApi ? 'image_backup' : null, ...options });
  const imageId = viaApi ? env.cloud.createImageFor(inst) : undefined;
  const input: SnapshotInput = { instanceUuid: uuid, name: 'nightly', backup: spec, ...(imageId ? { imageId } : {}) };
  const handle = await env.client.workflow.start('snapshotInstance', { taskQueue: CONTROL_TASK_QUEUE, workflowId: snapshotWorkflowId(uuid), args: [input] });
  try {
    return { inst, result: await handle.result() };
  } catch (error) {
    if (!(error instanceof WorkflowFailedError)) throw error;
    return { inst, error };
  }
}

describe('backups: the snapshot path with task_state image_backup, then rotation', () => {
  it.each([
    { path: 'one pass', onePass: true },
    { path: 'block copy', onePass: false },
  ])('$path: the backup goes active, task_state ends None, and the rotation runs last with the new image', async ({ onePass }) => {
    const { inst, result } = await backup({ guest: 'running', onePass });
    expect(result).toMatchObject({ status: 'active', imageId: inst.imageId, rotation: { kept: [inst.imageId], deleted: [], failed: [] } });
    expect(result?.steps.task_state_image_backup).toBeGreaterThanOrEqual(0);
    expect(result?.steps.task_state_image_snapshot).toBeUndefined();
    expect(inst.taskState).toBeNull();
    expect(inst.imageStatus).toBe('active');
    expect(inst.notifications).toEqual(['snapshot.start', 'snapshot.end']);
    expect(inst.rotations).toEqual([{ imageId: inst.imageId, rotation: 2 }]);
    expect(inst.calls[inst.calls.length - 1]).toBe('rotateBackups');
  });

  it('cold from running: the guest comes back and the backup is rotated', async () => {
    const { inst, result } = await backup({ guest: 'running', liveCapable: false });
    expect(result?.mode).toBe('cold');
    expect(inst.guest).toBe('running');
    expect(inst.rotations).toHaveLength(1);
  });

  it('started without an image (Temporal UI, ops): the image it makes is a backup of the type', async () => {
    const { inst, result } = await backup({ guest: 'running' }, false);
    expect(inst.calls[0]).toBe('createSnapshotImage');
    expect(inst.imageBackupType).toBe('daily');
    expect(result?.imageId).toBe(inst.imageId);
    expect(inst.rotations).toEqual([{ imageId: inst.imageId, rotation: 2 }]);
  });

  it.each(['uploadSnapshot', 'extractSnapshot', 'setTaskState#4'])('a backup failing in %s rotates nothing', async (step) => {
    const { inst, error } = await backup({ guest: 'running', failures: { [step]: 'fatal' } });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.calls).not.toContain('rotateBackups');
    expect(inst.taskState).toBeNull();
    expect(inst.imageStatus).toBe(step === 'setTaskState#4' ? 'active' : 'deleted');
  });

  it('an instance in another task (image_snapshot_pending) is not taken over: nothing runs, nothing rotates', async () => {
    const { inst, error } = await backup({ guest: 'running', taskState: 'image_snapshot_pending' });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.calls).not.toContain('getDomainPowerState');
    expect(inst.calls).not.toContain('rotateBackups');
  });

  it('a rotation that fails once (image service away) is retried and the backup completes', async () => {
    const { inst, result } = await backup({ guest: 'running', failures: { rotateBackups: 'transient' } });
    expect(result?.status).toBe('active');
    expect(inst.calls.filter((c) => c === 'rotateBackups')).toHaveLength(2);
    expect(inst.rotations).toHaveLength(1);
  });

  it('rotation 0 reaches the rotation (which deletes the new backup too, as in Nova)', async () => {
    const { inst, result } = await backup({ guest: 'running' }, true, { backupType: 'weekly', rotation: 0 });
    expect(result?.rotation).toEqual({ kept: [], deleted: [inst.imageId], failed: [] });
  });
});

describe('a schedule\'s retention: PBS\'s prune after the rotation', () => {
  const RETAINED = { backupType: 'daily', rotation: 5, retention: { keepLast: 2, keepDaily: 7 } };

  it('prunes last, after the rotation, with the new image; the result carries what it kept', async () => {
    const { inst, result } = await backup({ guest: 'running' }, true, RETAINED);
    expect(inst.calls.slice(-2)).toEqual(['rotateBackups', 'pruneBackups']);
    expect(inst.prunes).toEqual([{ imageId: inst.imageId, retention: { keepLast: 2, keepDaily: 7 } }]);
    expect(result?.prune).toEqual({ kept: [inst.imageId], deleted: [], failed: [] });
    expect(result?.steps.prune_backups).toBeGreaterThanOrEqual(0);
    // The backup counters go by type: start, end and (on failure) error carry it.
    expect(inst.notifiedBackupTypes).toEqual(['daily', 'daily']);
  });

  it('without a retention (createBackup) nothing is pruned', async () => {
    const { inst, result } = await backup({ guest: 'running' });
    expect(inst.calls).not.toContain('pruneBackups');
    expect(result?.prune).toBeUndefined();
  });

  it.each(['uploadSnapshot', 'rotateBackups'])('a backup failing in %s prunes nothing', async (step) => {
    const { inst, error } = await backup({ guest: 'running', failures: { [step]: 'fatal' } }, true, RETAINED);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.calls).not.toContain('pruneBackups');
    expect(inst.notifiedBackupTypes.at(-1)).toBe('daily');
    expect(inst.notifications.at(-1)).toBe('snapshot.error');
  });

  it('a prune that fails once is retried, and the backup completes', async () => {
    const { inst, result } = await backup({ guest: 'running', failures: { pruneBackups: 'transient' } }, true, RETAINED);
    expect(result?.status).toBe('active');
    expect(inst.calls.filter((c) => c === 'pruneBackups')).toHaveLength(2);
    expect(inst.prunes).toHaveLength(1);
  });
});
