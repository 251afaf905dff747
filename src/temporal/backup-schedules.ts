// An instance's backup schedule as a Temporal Schedule (the Temporal UI shows its next runs and
// recent actions, and pauses and triggers it): a cron expression or an interval, a time zone and a
// jitter, overlap SKIP (a run due while the last is still going is skipped, and the scheduledBackup
// action skips itself while any snapshot of the instance runs), and a catch-up window after
// control-plane downtime. The memo names the instance's project, for project-scoped listings.
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleSpec } from '@temporalio/client';
import {
  backupScheduleId,
  BackupScheduleSpecSchema,
  BackupSpecSchema,
  CONTROL_TASK_QUEUE,
  SCHEDULED_BACKUP_WORKFLOW,
  type BackupScheduleSpec,
  type BackupSpec,
  ScheduledBackupInputSchema,
  type ScheduledBackupInput,
} from '../contract';

/** After downtime, a run missed by more than this is skipped, not made up (Temporal's own default is 1 year). */
export const DEFAULT_CATCHUP_WINDOW_SECONDS = 3600;

export interface BackupScheduleView {
  scheduleId: string;
  instanceUuid: string;
  projectId: string | null;
  backup: BackupSpec;
  spec: BackupScheduleSpec | null;
  paused: boolean;
  note: string | null;
  catchupWindowSeconds: number;
  nextRuns: string[];
  recentRuns: { scheduledAt: string; takenAt: string; workflowId: string }[];
}

function temporalSpec(spec: BackupScheduleSpec): ScheduleSpec {
  return {
    ...(spec.cron !== undefined ? { cronExpressions: [spec.cron] } : { intervals: [{ every: `${spec.intervalSeconds ?? 0}s` }] }),
    ...(spec.timeZone !== undefined ? { timezone: spec.timeZone } : {}),
    ...(spec.jitterSeconds !== undefined ? { jitter: `${spec.jitterSeconds}s` } : {}),
  };
}

/**
 * The backup from the action's own input; the spec as the schedule was created with it, from the
 * memo (Temporal rewrites cron into calendars), null for a schedule made elsewhere (the Temporal CLI).
 */
function viewOf(instanceUuid: string, d: ScheduleDescription): BackupScheduleView {
  const memo = d.memo ?? {};
  const args: readonly unknown[] = d.action.args ?? [];
  const spec = BackupScheduleSpecSchema.safeParse(memo.spec);
  return {
    scheduleId: d.scheduleId,
    instanceUuid,
    projectId: typeof memo.projectId === 'string' ? memo.projectId : null,
    backup: ScheduledBackupInputSchema.parse(args[0]).backup,
    spec: spec.success ? spec.data : null,
    paused: d.state.paused,
    note: d.state.note ?? null,
    catchupWindowSeconds: Math.round(d.policies.catchupWindow / 1000),
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt.toISOString(), takenAt: a.takenAt.toISOString(), workflowId: a.action.workflow.workflowId })),
  };
}

/** A retention without a zone counts its days in the schedule's zone, where its cron is read. */
function withRetentionZone(backup: BackupSpec, spec: BackupScheduleSpec): BackupSpec {
  if (backup.retention === undefined || backup.retention.timeZone !== undefined || spec.timeZone === undefined) return backup;
  return { ...backup, retention: { ...backup.retention, timeZone: spec.timeZone } };
}

export class BackupSchedules {
  constructor(
    private readonly client: Client,
    private readonly options: { catchupWindowSeconds: number } = { catchupWindowSeconds: DEFAULT_CATCHUP_WINDOW_SECONDS },
  ) {}

  /** Creates the instance's schedule (one per instance: ScheduleAlreadyRunning when it has one). */
  async create(instance: { uuid: string; projectId: string | null }, rawSpec: BackupScheduleSpec, rawBackup: BackupSpec): Promise<BackupScheduleView> {
    const spec = BackupScheduleSpecSchema.parse(rawSpec);
    const backup = withRetentionZone(BackupSpecSchema.parse(rawBackup), spec);
    const input: ScheduledBackupInput = { instanceUuid: instance.uuid, backup };
    await this.client.schedule.create({
      scheduleId: backupScheduleId(instance.uuid),
      spec: temporalSpec(spec),
      action: {
        type: 'startWorkflow',
        workflowType: SCHEDULED_BACKUP_WORKFLOW,
        args: [input],
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: `scheduled-${backupScheduleId(instance.uuid)}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: `${this.options.catchupWindowSeconds}s` },
      memo: { projectId: instance.projectId, backup, spec },
    });
    return this.describeOrThrow(instance.uuid);
  }

  /** null when the instance has no schedule. */
  async describe(instanceUuid: string): Promise<BackupScheduleView | null> {
    try {
      return viewOf(instanceUuid, await this.client.schedule.getHandle(backupScheduleId(instanceUuid)).describe());
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return null;
      throw err;
    }
  }

  async pause(instanceUuid: string, note?: string): Promise<void> {
    await this.client.schedule.getHandle(backupScheduleId(instanceUuid)).pause(note);
  }

  async resume(instanceUuid: string, note?: string): Promise<void> {
    await this.client.schedule.getHandle(backupScheduleId(instanceUuid)).unpause(note);
  }

  /** A run now, whatever the spec and the pause say; the overlap policy still applies. */
  async trigger(instanceUuid: string): Promise<void> {
    await this.client.schedule.getHandle(backupScheduleId(instanceUuid)).trigger(ScheduleOverlapPolicy.SKIP);
  }

  /** Removes the schedule; true when there was one (a deleted instance's schedule goes this way). */
  async delete(instanceUuid: string): Promise<boolean> {
    try {
      await this.client.schedule.getHandle(backupScheduleId(instanceUuid)).delete();
      return true;
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return false;
      throw err;
    }
  }

  private async describeOrThrow(instanceUuid: string): Promise<BackupScheduleView> {
    const view = await this.describe(instanceUuid);
    if (view === null) throw new ScheduleNotFoundError('the schedule just created is gone', backupScheduleId(instanceUuid));
    return view;
  }
}
