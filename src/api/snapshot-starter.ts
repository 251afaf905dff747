// Nova's compute API snapshot() and backup() as one unit: state checks, queued image record,
// task_state CAS None → image_snapshot_pending (a backup: image_backup), then the workflow start
// (Nova's RPC cast). Every refusal after the
// image exists deletes it again, and a failed start also puts task_state back, so a refused
// request leaves nothing behind.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { createSnapshotImageRecord, ImageNotFound, ImageTooLarge, isReservedImageKey, type Image, type ImageClient } from '../images/client';
import { InstanceNotFound, UnexpectedTaskState, type Instance, type InstanceStore } from '../store';
import { CONTROL_TASK_QUEUE, isVolumeBacked, SnapshotInputSchema, snapshotQuotaExceeded, snapshotWorkflowId, WORKFLOW_TYPE, type BackupSpec, type SnapshotInput, type TaskState, type VmState, VOLUME_BACKED_BACKUP_REFUSAL } from '../contract';
import type { SnapshotQuota } from '../cinder';
import { ComputeHostKey, ImageIdKey, InstanceUuidKey } from '../temporal/search-attributes';
import { ApiError, badRequest, conflict, forbidden, invalidState, serverNotFound, serviceUnavailable } from './api-errors';
import { trustRefusal, type RequestTrust } from './volume-trust';

/** vm_states Nova's snapshot() accepts (@check_instance_state(vm_state=[ACTIVE, STOPPED, PAUSED, SUSPENDED])). */
export const SNAPSHOT_VM_STATES: readonly VmState[] = ['active', 'stopped', 'paused', 'suspended'];

export interface SnapshotRequest {
  instance: Instance;
  name: string;
  metadata: Record<string, string>;
  /** Image client acting as the caller (the image is owned by the caller's project, as in Nova). */
  images: ImageClient;
  /** Set by ops retries (and for a system-scoped caller) so the new image belongs to the instance's project rather than the caller's. */
  owner?: string;
  /** The requesting user (Keystone's), for the image's `user_id` property and the instance action. */
  userId?: string;
  /** The API request id: the instance action's key, as in Nova. */
  requestId: string;
  /** The project the action is recorded for (the caller's). */
  projectId: string;
  /** createBackup: the image is a backup of this type, rotated once active. */
  backup?: BackupSpec;
  /** Nova's metadata_items quota applies (default); createBackup from 2.39 skips it. */
  checkMetadataQuota?: boolean;
  /** Cinder's snapshot quota in the instance's project (SNAP_VOLUME_URL), read before a volume-backed run */
  snapshotQuota?: () => Promise<SnapshotQuota>;
  /** Under Keystone, for a volume-backed instance: the caller's roles delegated to the workers (only the id goes into the run) */
  trust?: RequestTrust;
}

/** What differs between Nova's snapshot() and backup(): the action's name and the task_state it sets. */
function actionOf(request: SnapshotRequest): { action: 'createImage' | 'createBackup'; pending: NonNullable<TaskState> } {
  return request.backup === undefined ? { action: 'createImage', pending: 'image_snapshot_pending' } : { action: 'createBackup', pending: 'image_backup' };
}

export interface StartedSnapshot {
  imageId: string;
  workflowId: string;
  runId: string;
}

export interface SnapshotStarterDeps {
  store: InstanceStore;
  temporal: Client;
  metadataQuota: number;
  /** Upper bound on the workflow start call; the client keeps retrying an unreachable server until then. */
  startTimeoutMs?: number;
  log: Logger;
}

export function checkMetadata(metadata: Record<string, string>, quota: number | null): void {
  if (quota !== null && Object.keys(metadata).length > quota) throw forbidden('Image metadata limit exceeded');
  for (const key of Object.keys(metadata)) {
    if (isReservedImageKey(key)) throw new ApiError(400, `Invalid metadata key: '${key}' is a reserved image attribute`);
  }
}

export function checkSnapshotState(instance: Instance, action: 'createImage' | 'createBackup' = 'createImage'): void {
  if (!SNAPSHOT_VM_STATES.includes(instance.vmState)) throw invalidState(action, instance.uuid, 'vm_state', instance.vmState);
  if (instance.taskState !== null) throw invalidState(action, instance.uuid, 'task_state', instance.taskState);
}

/**
 * Nova's backup() after its state checks: no backup of a volume-backed instance (400). A backup
 * schedule is refused the same way, so that none is made whose every run would fail.
 */
export function refuseVolumeBackedBackup(instance: Pick<Instance, 'volumes'>): void {
  if (isVolumeBacked(instance)) throw badRequest(VOLUME_BACKED_BACKUP_REFUSAL);
}

export class SnapshotStarter {
  constructor(private readonly deps: SnapshotStarterDeps) {}

  async start(request: SnapshotRequest): Promise<StartedSnapshot> {
    const { instance } = request;
    const { action } = actionOf(request);
    checkMetadata(request.metadata, request.checkMetadataQuota === false ? null : this.deps.metadataQuota);
    checkSnapshotState(instance, action);
    if (request.backup !== undefined) refuseVolumeBackedBackup(instance);
    const log = this.deps.log.child({ instance_uuid: instance.uuid });
    await checkVolumeSnapshotQuota(request, log);
    if (request.trust === undefined) return this.startRun(request, undefined);
    let trustId: string;
    try {
      trustId = await request.trust.create();
    } catch (err) {
      throw trustRefusal(err, log);
    }
    try {
      return await this.startRun(request, trustId);
    } catch (err) {
      // a refused request leaves no delegation behind (an expired one would be harmless, but it is ours)
      await request.trust.revoke(trustId).catch((revokeErr: unknown) => log.warn({ err: revokeErr, trust_id: trustId }, 'could not delete the trust of a refused snapshot request; it expires on its own'));
      throw err;
    }
  }

  private async startRun(request: SnapshotRequest, trustId: string | undefined): Promise<StartedSnapshot> {
    const { instance } = request;
    const { action, pending } = actionOf(request);
    const image = await this.createImageRecord(request, this.deps.log.child({ instance_uuid: instance.uuid }));
    const log = this.deps.log.child({ instance_uuid: instance.uuid, image_id: image.id });

    const cas = await this.deps.store.compareAndSetTaskState(instance.uuid, [null], pending);
    if (!cas.ok) {
      await this.deleteImage(request.images, image.id, log);
      if (cas.error instanceof InstanceNotFound) throw serverNotFound(instance.uuid);
      const actual = cas.error instanceof UnexpectedTaskState ? cas.error.actual : null;
      throw invalidState(action, instance.uuid, 'task_state', actual);
    }

    // Nova's _record_action_start, before the cast: the workflow's events land under it.
    await this.deps.store.actions.record({ requestId: request.requestId, instanceUuid: instance.uuid, action, imageId: image.id, userId: request.userId, projectId: request.projectId });
    const input: SnapshotInput = SnapshotInputSchema.parse({
      instanceUuid: instance.uuid,
      name: request.name,
      metadata: request.metadata,
      imageId: image.id,
      ...(request.backup !== undefined ? { backup: request.backup } : {}),
      ...(trustId !== undefined ? { trustId } : {}),
    });
    const workflowId = snapshotWorkflowId(instance.uuid);
    try {
      const deadline = Date.now() + (this.deps.startTimeoutMs ?? 10_000);
      const handle = await this.deps.temporal.withDeadline(deadline, () => this.deps.temporal.workflow.start(WORKFLOW_TYPE, {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId,
        args: [input],
        // One snapshot per instance at a time; a new run is allowed once the previous one closed.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        typedSearchAttributes: [
          { key: InstanceUuidKey, value: instance.uuid },
          { key: ComputeHostKey, value: instance.host },
          { key: ImageIdKey, value: image.id },
        ],
      }));
      log.info({ workflow_id: workflowId, run_id: handle.firstExecutionRunId, step: 'starting' }, 'snapshot workflow started');
      return { imageId: image.id, workflowId, runId: handle.firstExecutionRunId };
    } catch (err) {
      await this.undo(request, image.id, log);
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw conflict(`Cannot '${action}' instance ${instance.uuid} while snapshot workflow ${workflowId} is still running`);
      }
      log.error({ err, workflow_id: workflowId }, 'snapshot workflow could not be started');
      throw serviceUnavailable('The snapshot service is unavailable: the workflow could not be started. Nothing was changed; try again later.');
    }
  }

  /** The image service's words (its URL, its errors) go to the log; the caller reads a fixed sentence. */
  private async createImageRecord(request: SnapshotRequest, log: Logger): Promise<Image> {
    try {
      return await createSnapshotImageRecord(request.images, request.instance, request.name, request.metadata, { owner: request.owner, userId: request.userId, backupType: request.backup?.backupType });
    } catch (err) {
      if (!(err instanceof ApiError)) log.error({ err }, 'the image service could not create the snapshot image');
      throw imageServiceError(err);
    }
  }

  private async undo(request: SnapshotRequest, imageId: string, log: Logger): Promise<void> {
    await this.deleteImage(request.images, imageId, log);
    await this.deps.store.actions.remove(request.requestId).catch((err: unknown) => log.warn({ err }, 'could not take back the instance action'));
    const { pending } = actionOf(request);
    const reset = await this.deps.store.compareAndSetTaskState(request.instance.uuid, [pending], null);
    if (!reset.ok) log.warn({ err: reset.error }, `task_state was not ${pending} during undo; left as is`);
  }

  private async deleteImage(images: ImageClient, imageId: string, log: Logger): Promise<void> {
    try {
      await images.delete(imageId);
    } catch (err) {
      if (err instanceof ImageNotFound) return;
      // The record stays queued; the operator sees it in the log and in the image list.
      log.error({ err }, 'could not delete the image of a refused snapshot request');
    }
  }
}

/**
 * Nova's snapshot_volume_backed checks the Cinder snapshot quota before anything is made and its API
 * answers OverQuota with 403. Here the check comes before the image record too; the run checks again
 * (a quota Cinder cannot tell now is the run's to find, not a reason to refuse the request).
 */
async function checkVolumeSnapshotQuota(request: SnapshotRequest, log: Logger): Promise<void> {
  const { volumes } = request.instance;
  if (request.snapshotQuota === undefined || !isVolumeBacked(request.instance)) return;
  let quota: SnapshotQuota;
  try {
    quota = await request.snapshotQuota();
  } catch (err) {
    log.warn({ err }, 'could not read the Cinder snapshot quota; the snapshot run checks it');
    return;
  }
  if (snapshotQuotaExceeded(quota, volumes.length)) throw forbidden('Quota exceeded for resources: snapshots');
}

function imageServiceError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  // The image service's 413 at create is a project quota (Glance's image_count_total); Nova's
  // createImage answers it as OverQuota: 403, and no snapshot starts.
  if (err instanceof ImageTooLarge) return forbidden("Quota exceeded for resources: ['images']");
  return serviceUnavailable('The image service could not create the snapshot image. Nothing was changed; try again later.');
}
