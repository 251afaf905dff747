// Nova's compute_api.snapshot_volume_backed, the other branch of _action_create_image, with its holes
// closed: the volumes Cinder confirms and the snapshot quota first; then every volume snapshotted at
// one point in time under one guest freeze (thawed once Cinder has taken them all, within a deadline,
// not when the create calls return: Cinder takes a snapshot after its API answered); a wait for
// `available` with a deadline; then the image Nova makes (size
// 0, bdm v2 block_device_mapping naming the snapshots, bdm_v2, root_device_name), active. A failed
// run deletes the Cinder snapshots it made (found by the run's tag) and its image, and thaws the guest.
// Under Keystone the Cinder calls carry the run's trust (the caller's roles on the instance's
// project, made by the compute API), which the run deletes when it ends, done or compensated.
import { workflowInfo } from '@temporalio/workflow';
import { POWER_STATE_RUNNING, type PowerState, type SnapshotInstanceInfo, type SnapshotResult } from '../contract';
import { cinderWaitActivities, type ControlProxies, type HostActivityProxies } from './activity-proxies';
import type { Progress } from './progress';
import type { Saga } from './saga';

/**
 * How long the snapshots may take to become available (Nova waits with no deadline, the guest
 * frozen) when the plan names no deadline: plans recorded before SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS.
 */
export const VOLUME_SNAPSHOT_DEADLINE_MS = 10 * 60_000;

export interface VolumeBackedContext {
  instance: SnapshotInstanceInfo;
  imageId: string;
  name: string;
  /** the compute API's Keystone trust for this run; absent: the workers' own token */
  trustId?: string;
  powerState: PowerState;
  host: HostActivityProxies;
  control: ControlProxies;
  progress: Progress;
  saga: Saga;
  startedAt: number;
}

export async function snapshotVolumeBacked(ctx: VolumeBackedContext): Promise<SnapshotResult> {
  const { instance, imageId, host, control, progress, saga } = ctx;
  const instanceUuid = instance.uuid;
  const runId = workflowInfo().runId;
  const { trustId } = ctx;
  const trust = trustId === undefined ? {} : { trustId };
  // First registered, last run: the snapshots' deletion below still needs the trust.
  if (trustId !== undefined) saga.add('release trust', () => control.releaseTrust({ trustId }));
  const plan = await progress.step('plan_volumes', () => control.planVolumeSnapshots({ instanceUuid, imageId, ...trust }));

  // Registered before the cut: an attempt that died after its create calls leaves snapshots only the tag finds.
  saga.add('delete Cinder snapshots', () => cinderWaitActivities.deleteVolumeSnapshots({ instanceUuid, runId, ...trust }));
  const running = ctx.powerState === POWER_STATE_RUNNING;
  if (running) saga.add('thaw guest', () => host.volumes.thawGuest({ domainName: instance.domainName }));
  const cut = await progress.step('snapshot_volumes', () =>
    host.volumes.snapshotVolumes({
      domainName: instance.domainName,
      instanceUuid,
      projectId: instance.projectId ?? '',
      runId,
      imageName: ctx.name,
      volumes: plan.volumes,
      running,
      requireQuiesce: plan.requireQuiesce,
      ...trust,
    }),
  );
  await progress.step('await_volume_snapshots', () =>
    cinderWaitActivities.awaitVolumeSnapshots({ instanceUuid, snapshotIds: cut.snapshots.map((s) => s.snapshotId), deadlineMs: plan.deadlineMs ?? VOLUME_SNAPSHOT_DEADLINE_MS, ...trust }),
  );
  const image = await progress.step('complete_image', () =>
    control.completeVolumeBackedImage({
      imageId,
      volumes: cut.snapshots.map((s) => ({ device: s.device, snapshotId: s.snapshotId, volumeSizeGiB: s.sizeGiB, root: s.root })),
    }),
  );

  const mode = running ? 'live' : 'cold';
  const quiesce = { quiesced: cut.quiesced, freezeWindowMs: cut.freezeWindowMs };
  await progress.step('task_state_none', () => control.setTaskState({ instanceUuid, taskState: null, expected: ['image_snapshot', null] }));
  await progress.step('notify_end', () => control.notifySnapshot({ instanceUuid, imageId, event: 'snapshot.end', mode, durationMs: Date.now() - ctx.startedAt, ...quiesce }));
  // The last step, so that a compensation of any step before it still acts in Cinder with the trust;
  // the delegation ends with the run, not when it expires.
  if (trustId !== undefined) await progress.step('release_trust', () => control.releaseTrust({ trustId }));
  const result: SnapshotResult = { imageId, status: image.status, size: image.size, checksum: image.checksum, mode, ...quiesce, dataPath: 'cinder-snapshot', steps: progress.state.steps };
  if (cut.quiesceError !== undefined) result.quiesceError = cut.quiesceError;
  return result;
}
