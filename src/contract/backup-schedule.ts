// A backup schedule of one instance: a Temporal Schedule whose action is the scheduledBackup
// workflow, which starts the instance's snapshot run as a backup (or skips while one is running).
// What the API, snapctl and the workflow share. Deterministic-safe.
import { z } from 'zod';
import { TimeZoneSchema } from './backup-retention';
import { BackupSpecSchema } from './snapshot-workflow';

export const SCHEDULED_BACKUP_WORKFLOW = 'scheduledBackup';

export const BACKUP_SCHEDULE_ID_PREFIX = 'backup-';

/** One schedule per instance: its id is the instance's. */
export function backupScheduleId(instanceUuid: string): string {
  return `${BACKUP_SCHEDULE_ID_PREFIX}${instanceUuid}`;
}

/** The instance a schedule id names, or null for another kind of schedule. */
export function instanceOfScheduleId(scheduleId: string): string | null {
  const rest = scheduleId.startsWith(BACKUP_SCHEDULE_ID_PREFIX) ? scheduleId.slice(BACKUP_SCHEDULE_ID_PREFIX.length) : '';
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(rest) ? rest : null;
}

/** A five-field cron expression (Temporal also reads @daily and friends); no TZ prefix: the zone is its own field. */
export const CronSchema = z
  .string()
  .max(100)
  .regex(/^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$/, 'a five-field cron expression or @daily, @weekly …');

/** seconds between backups */
export const IntervalSecondsSchema = z.number().int().min(1).max(366 * 24 * 3600);
/** each run starts up to this many seconds late, at random: a fleet's runs spread out */
export const JitterSecondsSchema = z.number().int().min(0).max(24 * 3600);

export const ONE_TIMING_MESSAGE = 'exactly one of cron and intervalSeconds';
/** A schedule is timed by a cron expression or an interval, never both. */
export function hasOneTiming(spec: { cron?: unknown; intervalSeconds?: unknown }): boolean {
  return (spec.cron === undefined) !== (spec.intervalSeconds === undefined);
}

export const BackupScheduleSpecSchema = z
  .object({
    cron: CronSchema.optional(),
    intervalSeconds: IntervalSecondsSchema.optional(),
    timeZone: TimeZoneSchema.optional(),
    jitterSeconds: JitterSecondsSchema.optional(),
  })
  .strict()
  .refine(hasOneTiming, ONE_TIMING_MESSAGE);
export type BackupScheduleSpec = z.infer<typeof BackupScheduleSpecSchema>;

export const ScheduledBackupInputSchema = z
  .object({
    instanceUuid: z.string().uuid(),
    backup: BackupSpecSchema,
  })
  .strict();
export type ScheduledBackupInput = z.infer<typeof ScheduledBackupInputSchema>;

export interface ScheduledBackupResult {
  /** the snapshot run's workflow id, when it was started */
  started: boolean;
  /** why not: a snapshot of the instance was already running */
  skippedReason?: string;
  imageId?: string;
}
