// An instance's backup schedule as a Temporal Schedule (the Temporal UI shows its next runs and
// recent actions, and pauses and triggers it): a cron expression or an interval, a time zone and a
// jitter, overlap SKIP (a run due while the last is still going is skipped, and the scheduledBackup
// action skips itself while any snapshot of the instance runs), and a catch-up window after
// control-plane downtime. The memo names the instance's project, for project-scoped listings.
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleSpec, type ScheduleSummary } from '@temporalio/client';
import {
  BACKUP_SCHEDULE_ID_PREFIX,
  backupScheduleId,
  instanceOfScheduleId,
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

/** A schedule as a listing shows it: what the visibility store keeps (the backup from the memo). */
export interface BackupScheduleListing {
  scheduleId: string;
  instanceUuid: string;
  projectId: string | null;
  /** null for a schedule made elsewhere, with no memo */
  backup: BackupSpec | null;
  spec: BackupScheduleSpec | null;
  paused: boolean;
  note: string | null;
  timing: ScheduleTiming;
  nextRuns: string[];
  recentRuns: { scheduledAt: string; takenAt: string; workflowId: string }[];
}

/**
 * When the schedule fires as Temporal runs it (its compiled spec, which an edit in the Temporal UI
 * changes and the memo's `spec` does not): the periods of its intervals (none for a cron, whose
 * calendar shows only in `nextRuns`) and its jitter.
 */
export interface ScheduleTiming {
  intervalsSeconds: number[];
  jitterSeconds: number;
}

export interface BackupScheduleView extends BackupScheduleListing {
  backup: BackupSpec;
  catchupWindowSeconds: number;
}

/** The parts a description and a listing share. */
function listingOf(instanceUuid: string, d: ScheduleDescription | ScheduleSummary): BackupScheduleListing {
  const memo = d.memo ?? {};
  const spec = BackupScheduleSpecSchema.safeParse(memo.spec);
  const backup = BackupSpecSchema.safeParse(memo.backup);
  return {
    scheduleId: d.scheduleId,
    instanceUuid,
    projectId: typeof memo.projectId === 'string' ? memo.projectId : null,
    backup: backup.success ? backup.data : null,
    spec: spec.success ? spec.data : null,
    paused: d.state.paused,
    note: d.state.note ?? null,
    timing: {
      intervalsSeconds: (d.spec?.intervals ?? []).map((i) => i.every / 1000),
      jitterSeconds: (d.spec?.jitter ?? 0) / 1000,
    },
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt.toISOString(), takenAt: a.takenAt.toISOString(), workflowId: a.action.workflow.workflowId })),
  };
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
  const args: readonly unknown[] = d.action.args ?? [];
  return {
    ...listingOf(instanceUuid, d),
    backup: ScheduledBackupInputSchema.parse(args[0]).backup,
    catchupWindowSeconds: Math.round(d.policies.catchupWindow / 1000),
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

  /** The Temporal namespace the schedules live in (the Temporal UI's links name it). */
  get namespace(): string {
    return this.client.options.namespace;
  }

  /** Creates the instance's schedule (one per instance: ScheduleAlreadyRunning when it has one). */
  async create(instance: { uuid: string; projectId: string | null }, rawSpec: BackupScheduleSpec, rawBackup: BackupSpec, paused?: { note: string | null }): Promise<BackupScheduleView> {
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
      ...(paused !== undefined ? { state: { paused: true, ...(paused.note !== null ? { note: paused.note } : {}) } } : {}),
    });
    return this.describeOrThrow(instance.uuid);
  }

  /**
   * Creates the schedule or replaces the instance's one (Temporal keeps a schedule's memo as it was
   * created, so a new spec is a new schedule; its recent actions start again, a pause and its note
   * stay). A run in flight goes on.
   */
  async replace(instance: { uuid: string; projectId: string | null }, spec: BackupScheduleSpec, backup: BackupSpec): Promise<BackupScheduleView> {
    const before = await this.describe(instance.uuid);
    await this.delete(instance.uuid);
    return this.create(instance, spec, backup, before?.paused === true ? { note: before.note } : undefined);
  }

  /**
   * Every instance's backup schedule, from Temporal's visibility store (eventually consistent: a
   * schedule made a moment ago may be missing), optionally only those of the instances named.
   */
  async list(instanceUuids?: ReadonlySet<string>): Promise<BackupScheduleListing[]> {
    const out: BackupScheduleListing[] = [];
    for await (const summary of this.client.schedule.list({ pageSize: 1000 })) {
      if (!summary.scheduleId.startsWith(BACKUP_SCHEDULE_ID_PREFIX)) continue;
      const instanceUuid = instanceOfScheduleId(summary.scheduleId);
      if (instanceUuid === null || (instanceUuids !== undefined && !instanceUuids.has(instanceUuid))) continue;
      out.push(listingOf(instanceUuid, summary));
    }
    return out.sort((a, b) => a.instanceUuid.localeCompare(b.instanceUuid));
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
