// A deleted instance's backup schedule goes with it. Nova's delete marks the row (deleted, vm_state
// deleted) and nothing here tells Temporal, so each reconcile pass removes the schedules whose
// instance the store no longer has live: deleted, or never known to it. Idempotent and safe on
// several control nodes at once (deleting a schedule that is already gone is no error).
import type { Logger } from 'pino';
import type { InstanceStore } from '../store';
import type { BackupSchedules } from '../temporal/backup-schedules';

export interface ScheduleSweepDeps {
  schedules: Pick<BackupSchedules, 'list' | 'delete'>;
  store: Pick<InstanceStore, 'listAll' | 'get'>;
  log: Logger;
}

/** Deletes the backup schedules of instances that are not live; returns the instances whose schedule went. */
export async function sweepSchedulesOfDeletedInstances(deps: ScheduleSweepDeps): Promise<string[]> {
  // Live instances first: a schedule listed after this read whose instance is missing from it was
  // made for an instance stored since, which the lookup right before the delete finds.
  const live = new Set((await deps.store.listAll()).map((i) => i.uuid));
  const removed: string[] = [];
  for (const schedule of await deps.schedules.list()) {
    const uuid = schedule.instanceUuid;
    if (live.has(uuid) || (await deps.store.get(uuid)) !== undefined) continue;
    if (await deps.schedules.delete(uuid)) {
      removed.push(uuid);
      deps.log.info({ instance_uuid: uuid, schedule_id: schedule.scheduleId }, 'reconciler: deleted the backup schedule of a deleted instance');
    }
  }
  return removed;
}
