// Backup schedules that must not go on as they are. A deleted instance's goes with it: Nova's delete
// marks the row (deleted, vm_state deleted) and nothing here tells Temporal, so each reconcile pass
// removes the schedules whose instance the store no longer has live: deleted, or never known to it.
// A volume-backed instance's is paused, with Nova's refusal as its note: each of its runs would be a
// backup Nova refuses (a schedule made before the refusal, or a root disk that became a volume), a
// failed run and a failure alert every period. Pausing, not deleting, keeps the operator's spec.
// Idempotent and safe on several control nodes at once (a schedule already gone is no error).
import type { Logger } from 'pino';
import { isVolumeBacked, VOLUME_BACKED_BACKUP_REFUSAL } from '../contract';
import type { InstanceStore } from '../store';
import type { BackupSchedules } from '../temporal/backup-schedules';

export interface ScheduleSweepDeps {
  schedules: Pick<BackupSchedules, 'list' | 'delete' | 'pause'>;
  store: Pick<InstanceStore, 'listAll' | 'get'>;
  log: Logger;
}

export interface ScheduleSweep {
  /** instances whose schedule was deleted with them */
  deleted: string[];
  /** volume-backed instances whose schedule was paused */
  paused: string[];
}

export async function sweepBackupSchedules(deps: ScheduleSweepDeps): Promise<ScheduleSweep> {
  // Live instances first: a schedule listed after this read whose instance is missing from it was
  // made for an instance stored since, which the lookup right before the delete finds.
  const live = new Map((await deps.store.listAll()).map((i) => [i.uuid, i]));
  const sweep: ScheduleSweep = { deleted: [], paused: [] };
  for (const schedule of await deps.schedules.list()) {
    const uuid = schedule.instanceUuid;
    const instance = live.get(uuid) ?? (await deps.store.get(uuid));
    if (instance !== undefined) {
      if (!schedule.paused && isVolumeBacked(instance)) {
        await deps.schedules.pause(uuid, VOLUME_BACKED_BACKUP_REFUSAL);
        sweep.paused.push(uuid);
        deps.log.warn({ instance_uuid: uuid, schedule_id: schedule.scheduleId }, 'reconciler: paused the backup schedule of a volume-backed instance (Nova backs none up)');
      }
      continue;
    }
    if (await deps.schedules.delete(uuid)) {
      sweep.deleted.push(uuid);
      deps.log.info({ instance_uuid: uuid, schedule_id: schedule.scheduleId }, 'reconciler: deleted the backup schedule of a deleted instance');
    }
  }
  return sweep;
}
