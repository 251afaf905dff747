// The control worker's activities: instance store, image records and notifications (Nova's
// compute manager side of the snapshot that does not touch the hypervisor).
import { Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { SnapshotMetrics } from '../observability/metrics';
import { ImageNotFound, imageStatus, type ImageClient } from '../images/client';
import { UnexpectedDeletingTaskState, UnexpectedTaskState, type Instance, type InstanceStore } from '../store';
import { InventoryDomainSchema, SNAPSHOT_TASK_STATES, type ControlActivities, type InventoryDomain, type SnapshotImageRef, type SnapshotInstanceInfo, type SnapshotNotification, type TaskState } from '../contract';
import { translateFailures } from './activity-failures';
import { activityCallUuid, withHeartbeat } from './activity-support';
import { rotateBackups } from './backup-rotation';
import { pruneBackups } from './backup-prune';
import type { CinderForProject } from '../cinder';
import { createVolumeControlActivities } from './volume-activities';

export interface ControlActivityDeps {
  store: InstanceStore;
  /** acts with a service token: compensations must work whoever started the snapshot */
  images: ImageClient;
  /**
   * Nova's compute API _create_image, shared with the API's createImage path; under `imageId`, so
   * that a repeat of the call finds the image the first one made (see createSnapshotImageRecord).
   */
  createImageRecord(instance: Instance, name: string, metadata: Record<string, string>, backupType: string | undefined, imageId: string, backupScheduleId?: string): Promise<SnapshotImageRef>;
  log: Logger;
  metrics?: SnapshotMetrics;
  /** Cinder in an instance's project (SNAP_VOLUME_URL or Keystone's catalog); undefined: volume-backed snapshots are refused */
  cinder?: CinderForProject;
  /** SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS in ms */
  volumeSnapshotTimeoutMs?: number;
  /** deletes a run's Keystone trust (undefined without Keystone) */
  releaseTrust?(trustId: string): Promise<void>;
}

/** Only on a retry (attempt > 1): on a first attempt the same state would be someone else's. */
function isOwnCommittedWrite(error: Error, target: TaskState): boolean {
  if (!(error instanceof UnexpectedTaskState) || error instanceof UnexpectedDeletingTaskState) return false;
  const { attempt, isLocal } = Context.current().info;
  // A local activity whose worker died is run again from attempt 1 by the workflow task's retry,
  // so its attempt cannot tell a repeat; another run cannot have written the state either, since
  // one snapshot run per instance is open at a time (workflow id snapshot-<uuid>).
  return error.actual === target && (attempt > 1 || isLocal);
}

function snapshotInfo(instance: Instance): SnapshotInstanceInfo {
  return {
    uuid: instance.uuid,
    domainName: instance.name,
    host: instance.host,
    projectId: instance.projectId,
    powerState: instance.powerState,
    imageRef: instance.imageRef,
    volumes: instance.volumes,
  };
}

const BACKUP_EVENTS = { 'snapshot.start': 'started', 'snapshot.end': 'completed', 'snapshot.error': 'failed' } as const;

function countBackup(metrics: SnapshotMetrics | undefined, instanceUuid: string, event: SnapshotNotification, backupType: string): void {
  metrics?.backups.count(BACKUP_EVENTS[event], backupType);
  if (event === 'snapshot.end') metrics?.backups.recordSuccess(instanceUuid, backupType);
}

export function createControlActivities(deps: ControlActivityDeps): ControlActivities {
  const { store, images, log } = deps;
  const activities: ControlActivities = {
    async createSnapshotImage({ instanceUuid, name, metadata, backupType, backupScheduleId }) {
      const instance = await store.getOrThrow(instanceUuid);
      // A local activity: a control worker killed before its workflow task completed leaves it
      // unrecorded, and the next worker runs it again. Under this call's own id that run finds
      // the image the first made, instead of leaving it queued beside a second (a scheduled backup
      // made twice, its first image never active and never rotated).
      return deps.createImageRecord(instance, name, metadata, backupType, activityCallUuid(), backupScheduleId);
    },

    async setTaskState({ instanceUuid, taskState, expected }) {
      const result = await store.compareAndSetTaskState(instanceUuid, expected, taskState);
      let instance: Instance;
      if (result.ok) instance = result.instance;
      else if (isOwnCommittedWrite(result.error, taskState)) {
        // A retry after a worker died between the commit and the report (kill -9, lost connection):
        // the row already holds this very step's state, so the step is done. Without this the retry
        // failed the snapshot with UnexpectedTaskState and threw away a resumable run.
        instance = await store.getOrThrow(instanceUuid);
        log.info({ instance_uuid: instanceUuid, task_state: taskState }, 'task_state already set by an earlier attempt');
      } else throw result.error;
      return snapshotInfo(instance);
    },

    async savePowerState({ instanceUuid, powerState }) {
      await store.setPowerState(instanceUuid, powerState);
    },

    async notifySnapshot({ instanceUuid, imageId, event, mode, durationMs, quiesced, freezeWindowMs, chain, step, error, backupType }) {
      // Nova's _notify_about_instance_usage: one structured event per transition, for log shippers.
      const chainFields = chain === undefined ? {} : { kind: chain.kind, full_reason: chain.fullReason, parent_image_id: chain.parentImageId, changed_bytes: chain.changedBytes };
      const fields = { event_type: `compute.instance.${event}`, instance_uuid: instanceUuid, image_id: imageId, mode, duration_ms: durationMs, quiesced, freeze_window_ms: freezeWindowMs, ...chainFields, step, error };
      if (event === 'snapshot.error') log.warn(fields, event);
      else log.info(fields, event);
      if (event === 'snapshot.end' && mode !== undefined && durationMs !== undefined) deps.metrics?.observeSnapshot(mode, durationMs / 1000);
      if (event === 'snapshot.error') deps.metrics?.countFailure(step ?? 'unknown');
      if (backupType !== undefined) countBackup(deps.metrics, instanceUuid, event, backupType);
      if (imageId !== undefined) await recordActionEvent(store, { instanceUuid, imageId, event, step, error });
    },

    async deleteImageUnlessActive({ imageId }) {
      try {
        const image = await images.get(imageId);
        if (image.status === 'active') return { deleted: false, status: image.status };
        await images.delete(imageId);
        log.info({ image_id: imageId, status: image.status }, 'deleted the image of a failed snapshot');
        return { deleted: true, status: image.status };
      } catch (err) {
        if (err instanceof ImageNotFound) return { deleted: false, status: null };
        throw err;
      }
    },

    async resetTaskState({ instanceUuid }) {
      const result = await store.compareAndSetTaskState(instanceUuid, SNAPSHOT_TASK_STATES, null);
      if (!result.ok) log.info({ instance_uuid: instanceUuid, reason: result.error.message }, 'task_state left as is');
    },

    async rotateBackups(request) {
      const outcome = await withHeartbeat(async (report) => rotateBackups(images, request, log, (imageId) => report({ last: imageId })));
      deps.metrics?.backups.countDeleted('rotated', request.backupType, outcome.deleted.length);
      return outcome;
    },

    async pruneBackups(request) {
      const outcome = await withHeartbeat(async (report) => pruneBackups(images, request, log, (imageId) => report({ last: imageId })));
      deps.metrics?.backups.countDeleted('pruned', request.backupType, outcome.deleted.length);
      return outcome;
    },

    async planChain({ instanceUuid }) {
      if (!(await images.composes())) {
        return { composes: false, parent: null, reason: 'the image backend cannot compose images (a real Glance): every snapshot is full' };
      }
      const candidates = await store.chain.candidates(instanceUuid);
      if (candidates.length === 0) {
        const known = await store.chain.list(instanceUuid);
        return { composes: true, parent: null, reason: known.length === 0 ? 'the first snapshot of this instance' : 'no earlier snapshot left a checkpoint to build on' };
      }
      const refusals: string[] = [];
      for (const parent of candidates) {
        const status = await imageStatus(images, parent.imageId);
        if (status === 'active') return { composes: true, parent, reason: null };
        refusals.push(`parent image ${parent.imageId} is ${status}`);
      }
      return { composes: true, parent: null, reason: refusals.join('; ') };
    },

    async recordChain(input) {
      await store.chain.record(input);
    },

    async recordInventory({ host, domains }) {
      // One domain the schema refuses (odd metadata on the host) must not keep the host's others out of the inventory.
      const valid: InventoryDomain[] = [];
      for (const d of domains) {
        const parsed = InventoryDomainSchema.safeParse({ ...d, host });
        if (parsed.success) valid.push(parsed.data);
        else log.warn({ host, domain: String(d.name).slice(0, 256), uuid: String(d.uuid).slice(0, 64), issues: parsed.error.issues.slice(0, 5) }, 'inventory: a domain left out of the report');
      }
      const instances = await store.upsertFromInventory(valid);
      return { instances: instances.length };
    },

    ...createVolumeControlActivities({ store, images, cinder: deps.cinder, snapshotTimeoutMs: deps.volumeSnapshotTimeoutMs, releaseTrust: deps.releaseTrust, log }),
  };
  return translateFailures(activities);
}

/** The createImage action's compute_snapshot_instance event (os-instance-actions), from the notification. */
async function recordActionEvent(
  store: InstanceStore,
  n: { instanceUuid: string; imageId: string; event: SnapshotNotification; step?: string; error?: string },
): Promise<void> {
  if (n.event === 'snapshot.start') {
    const instance = await store.get(n.instanceUuid, { includeDeleted: true });
    await store.actions.startSnapshotEvent(n.imageId, instance?.host ?? null);
  } else if (n.event === 'snapshot.end') {
    await store.actions.finishSnapshotEvent(n.imageId, { result: 'Success' });
  } else {
    await store.actions.finishSnapshotEvent(n.imageId, { result: 'Error', traceback: `snapshot failed at step ${n.step ?? 'unknown'}: ${n.error ?? 'no error text'}` });
  }
}
