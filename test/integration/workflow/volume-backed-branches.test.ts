// Nova's snapshot_volume_backed branch of the real workflow on the real dev server, with the fake
// cloud's activities (the real run-snapshot logic over an in-memory Cinder): the image Nova makes,
// the quota refusal, and the compensations of a failed run (snapshots deleted, image deleted,
// guest thawed), and a retried cut that makes no second snapshot; and a backup of a volume-backed
// instance, which Nova refuses, failed before anything is made in Cinder, alone or from a schedule.
import { randomUUID } from 'node:crypto';
import { ChildWorkflowFailure, WorkflowFailedError } from '@temporalio/client';
import { failureText, failureType } from '../../../src/workflows/failure-type';
import { CONTROL_TASK_QUEUE, ErrorTypes, snapshotWorkflowId, VOLUME_BACKED_BACKUP_REFUSAL, type ScheduledBackupInput, type SnapshotInput, type SnapshotResult, type SnapshotVolume } from '../../../src/contract';
import type { FakeInstance, FakeInstanceOptions } from '../../support/stubs/fake-cloud';
import { startStubEnvironment, type StubEnvironment } from '../../support/stubs/stub-workers';

let env: StubEnvironment;
beforeAll(async () => {
  env = await startStubEnvironment();
});
afterAll(async () => {
  await env?.stop();
});

function volumes(): SnapshotVolume[] {
  return [
    { volumeId: randomUUID(), device: 'vdb', root: false, sizeGiB: 2 },
    { volumeId: randomUUID(), device: 'vda', root: true, sizeGiB: 1 },
  ];
}

async function snapshot(options: Omit<FakeInstanceOptions, 'uuid'>, trustId?: string): Promise<{ inst: FakeInstance; result?: SnapshotResult; error?: Error }> {
  const uuid = randomUUID();
  const inst = env.cloud.add({ uuid, ...options, taskState: 'image_snapshot_pending' });
  const imageId = env.cloud.createImageFor(inst);
  const handle = await env.client.workflow.start('snapshotInstance', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: snapshotWorkflowId(uuid),
    args: [{ instanceUuid: uuid, name: 'snap', imageId, ...(trustId === undefined ? {} : { trustId }) }],
  });
  try {
    return { inst, result: await handle.result() };
  } catch (error) {
    if (!(error instanceof WorkflowFailedError)) throw error;
    return { inst, error };
  }
}

function expectCleanedUp(inst: FakeInstance): void {
  expect(inst.cinder.snapshots.size).toBe(0);
  expect(inst.imageStatus).toBe('deleted');
  expect(inst.frozen).toBe(false);
  expect(inst.taskState).toBeNull();
  expect(inst.notifications).toEqual(['snapshot.start', 'snapshot.error']);
}

describe('snapshot_volume_backed (stubbed activities, real Temporal)', () => {
  it('a running volume-backed guest: every volume snapshotted under one freeze, the image Nova makes, active', async () => {
    const vols = volumes();
    const { inst, result, error } = await snapshot({ guest: 'running', volumes: vols });
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ status: 'active', size: 0, dataPath: 'cinder-snapshot', mode: 'live', quiesced: true });
    expect(inst.cinder.creates).toBe(2);
    expect(inst.frozen).toBe(false);
    // the image-backed data path never ran
    expect(inst.calls).not.toContain('describeDomain');
    expect(inst.calls).not.toContain('streamSnapshot');
    const mapping = JSON.parse(inst.imageProperties.block_device_mapping ?? '[]') as { snapshot_id: string; device_name: string; boot_index: number | null; volume_size: number }[];
    const snapshotOf = (volumeId: string) => [...inst.cinder.snapshots.values()].find((s) => s.volume_id === volumeId)?.id;
    expect(mapping).toEqual([
      expect.objectContaining({ snapshot_id: snapshotOf(vols[1]!.volumeId), device_name: '/dev/vda', boot_index: 0, volume_size: 1 }),
      expect.objectContaining({ snapshot_id: snapshotOf(vols[0]!.volumeId), device_name: '/dev/vdb', boot_index: null, volume_size: 2 }),
    ]);
    expect(inst.imageProperties).toMatchObject({ bdm_v2: 'True', root_device_name: '/dev/vda' });
    expect(inst.taskState).toBeNull();
    expect(inst.notifications).toEqual(['snapshot.start', 'snapshot.end']);
  });

  it('a stopped volume-backed guest is not frozen', async () => {
    const { inst, result } = await snapshot({ guest: 'shutoff', volumes: volumes() });
    expect(result).toMatchObject({ status: 'active', mode: 'cold', quiesced: false, freezeWindowMs: null });
    expect(inst.calls).not.toContain('thawGuest');
  });

  it('over the snapshot quota: Nova OverQuota, nothing made, the image deleted', async () => {
    const { inst, error } = await snapshot({ guest: 'running', volumes: volumes(), snapshotQuota: { limit: 10, inUse: 9 } });
    expect(failureType(error?.cause)).toBe('SnapshotQuotaExceeded');
    expect(inst.cinder.creates).toBe(0);
    expect(inst.calls).not.toContain('snapshotVolumes');
    expectCleanedUp(inst);
  });

  it('a snapshot Cinder fails: the run fails, its snapshots and image are deleted, the guest thawed', async () => {
    const { inst, error } = await snapshot({ guest: 'running', volumes: volumes(), volumeSnapshotStatus: 'error' });
    expect(failureType(error?.cause)).toBe('VolumeSnapshotsNotAvailable');
    expect(inst.cinder.creates).toBe(2);
    expectCleanedUp(inst);
  });

  it('a cut that dies inside the freeze after its create calls: snapshots deleted, image deleted, guest thawed', async () => {
    const { inst, error } = await snapshot({ guest: 'running', volumes: volumes(), failures: { snapshotVolumes: 'fatal' } });
    expect(error).toBeDefined();
    expect(inst.cinder.creates).toBe(2);
    expect(inst.calls).toContain('thawGuest');
    expectCleanedUp(inst);
  });

  it('a retried cut finds the snapshots its first attempt made and makes none twice', async () => {
    const { inst, result } = await snapshot({ guest: 'running', volumes: volumes(), failures: { snapshotVolumes: 'transient' } });
    expect(result?.status).toBe('active');
    expect(inst.calls.filter((c) => c === 'snapshotVolumes')).toHaveLength(2);
    expect(inst.cinder.creates).toBe(2);
    expect(inst.cinder.snapshots.size).toBe(2);
    expect(inst.frozen).toBe(false);
  });

  it("under Keystone every Cinder step carries the run's trust, deleted once the image is active", async () => {
    const trustId = randomUUID().replace(/-/g, '');
    const { inst, result } = await snapshot({ guest: 'running', volumes: volumes() }, trustId);
    expect(result?.status).toBe('active');
    expect(inst.trustsUsed).toEqual([trustId, trustId, trustId]);
    expect(env.cloud.releasedTrusts.filter((t) => t === trustId)).toHaveLength(1);
    expect(Object.keys(result?.steps ?? {})).toContain('release_trust');
  });

  it("a failed run with a trust deletes its snapshots with the trust, then the trust", async () => {
    const trustId = randomUUID().replace(/-/g, '');
    const { inst, error } = await snapshot({ guest: 'running', volumes: volumes(), volumeSnapshotStatus: 'error' }, trustId);
    expect(failureType(error?.cause)).toBe('VolumeSnapshotsNotAvailable');
    expectCleanedUp(inst);
    // plan, cut, wait, then the compensation's delete: all with the trust
    expect(inst.trustsUsed).toEqual([trustId, trustId, trustId, trustId]);
    expect(env.cloud.releasedTrusts.filter((t) => t === trustId)).toHaveLength(1);
  });

  it('without a trust the Cinder steps use the workers\' own token and no trust is released', async () => {
    const before = env.cloud.releasedTrusts.length;
    const { inst, result } = await snapshot({ guest: 'running', volumes: volumes() });
    expect(result?.status).toBe('active');
    expect(inst.trustsUsed.every((t) => t === undefined)).toBe(true);
    expect(env.cloud.releasedTrusts).toHaveLength(before);
  });

  it('an image-backed instance with a data volume takes the image-backed path', async () => {
    const { inst, result } = await snapshot({ guest: 'running', volumes: [{ volumeId: randomUUID(), device: 'vdb', root: false, sizeGiB: 1 }] });
    expect(result?.dataPath).not.toBe('cinder-snapshot');
    expect(inst.calls).not.toContain('planVolumeSnapshots');
    expect(inst.cinder.creates).toBe(0);
  });
});

describe("a backup of a volume-backed instance: Nova's backup() refuses it", () => {
  const BACKUP = { backupType: 'daily', rotation: 2 };

  /** Outcomes a refused backup must show: nothing made in Cinder, the guest untouched, the image gone, a failed backup of its type. */
  function expectRefused(inst: FakeInstance, error: unknown): void {
    expect(failureType(error)).toBe(ErrorTypes.VolumeBackedBackup);
    expect(failureText(error)).toBe(VOLUME_BACKED_BACKUP_REFUSAL);
    expect(inst.cinder.creates).toBe(0);
    for (const call of ['planVolumeSnapshots', 'getDomainPowerState', 'snapshotVolumes', 'rotateBackups', 'pruneBackups']) expect(inst.calls).not.toContain(call);
    expect(inst.imageStatus).toBe('deleted');
    expect(inst.taskState).toBeNull();
    // snapshot.error with its backup_type: backups_failed_total{backup_type="daily"}
    expect(inst.notifications).toEqual(['snapshot.error']);
    expect(inst.notifiedBackupTypes).toEqual(['daily']);
  }

  it('a createBackup run (image made by the API, a trust) fails non-retryably, its image deleted and its trust released', async () => {
    const uuid = randomUUID();
    const inst = env.cloud.add({ uuid, guest: 'running', volumes: volumes(), taskState: 'image_backup' });
    const trustId = randomUUID().replace(/-/g, '');
    const input: SnapshotInput = { instanceUuid: uuid, name: 'nightly', imageId: env.cloud.createImageFor(inst), backup: BACKUP, trustId };
    const handle = await env.client.workflow.start('snapshotInstance', { taskQueue: CONTROL_TASK_QUEUE, workflowId: snapshotWorkflowId(uuid), args: [input] });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expectRefused(inst, (error as WorkflowFailedError).cause);
    expect(env.cloud.releasedTrusts.filter((t) => t === trustId)).toHaveLength(1);
    // one attempt: a workflow failure, not an activity retried
    expect(inst.calls.filter((c) => c === 'setTaskState')).toHaveLength(1);
  });

  it('a scheduled backup (a schedule made before the refusal) fails with its child, whose image the child made and deleted', async () => {
    const uuid = randomUUID();
    const inst = env.cloud.add({ uuid, guest: 'running', volumes: volumes(), taskState: null });
    const input: ScheduledBackupInput = { instanceUuid: uuid, backup: BACKUP };
    const handle = await env.client.workflow.start('scheduledBackup', { taskQueue: CONTROL_TASK_QUEUE, workflowId: `scheduled-backup-${uuid}`, args: [input] });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const child = (error as WorkflowFailedError).cause;
    expect(child).toBeInstanceOf(ChildWorkflowFailure);
    expect(inst.calls[0]).toBe('createSnapshotImage');
    expectRefused(inst, child?.cause);
  });
});
