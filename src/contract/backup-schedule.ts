// A backup schedule of one instance: a Temporal Schedule whose action is the scheduledBackup
// workflow, which starts the instance's snapshot run as a backup (or skips while one is running).
// What the API, snapctl and the workflow share. Deterministic-safe.
import { z } from 'zod';
import { TimeZoneSchema } from './backup-retention';
import { BackupSpecSchema } from './snapshot-workflow';

export const SCHEDULED_BACKUP_WORKFLOW = 'scheduledBackup';

/** One schedule per instance: its id is the instance's. */
export function backupScheduleId(instanceUuid: string): string {
  return `backup-${instanceUuid}`;
}

/** A five-field cron expression (Temporal also reads @daily and friends); no TZ prefix: the zone is its own field. */
const CronSchema = z
  .string()
  .max(100)
  .regex(/^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$/, 'a five-field cron expression or @daily, @weekly …');

export const BackupScheduleSpecSchema = z
  .object({
    cron: CronSchema.optional(),
    /** seconds between backups */
    intervalSeconds: z.number().int().min(1).max(366 * 24 * 3600).optional(),
    /** IANA name, e.g. Europe/Berlin; cron fields are read in it (default UTC) */
    timeZone: TimeZoneSchema.optional(),
    /** each run starts up to this many seconds late, at random: a fleet's runs spread out */
    jitterSeconds: z.number().int().min(0).max(24 * 3600).optional(),
  })
  .strict()
  .refine((s) => (s.cron === undefined) !== (s.intervalSeconds === undefined), 'exactly one of cron and intervalSeconds');
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
