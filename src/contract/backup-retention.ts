// Retention beyond Nova's rotation, as Proxmox Backup Server's prune has it: keep-last, keep-hourly,
// keep-daily, keep-weekly, keep-monthly, keep-yearly. Part of a schedule's backup spec, applied after
// each scheduled backup (after the rotation). Deterministic-safe.
import { z } from 'zod';
import { withoutControlCharacters } from './control-characters';

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** An IANA zone name, e.g. Europe/Berlin: what a schedule's cron fields and retention's periods are read in. */
export const TimeZoneSchema = withoutControlCharacters(z.string().min(1).max(64)).refine(isTimeZone, 'an IANA time zone name, e.g. Europe/Berlin');

/** PBS's keep-X options are counts of at least 1; an absent option keeps nothing by itself. */
const KeepCount = z.number().int().min(1).max(100_000);

/** PBS's keep-X periods: the one list the contract's keepX options, the API's keep_x fields and snapctl's --keep-x flags are named from. */
export const RETENTION_PERIODS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type RetentionPeriod = (typeof RETENTION_PERIODS)[number];
export type RetentionOption = `keep${Capitalize<RetentionPeriod>}`;

export const retentionOption = (period: RetentionPeriod): RetentionOption => `keep${period.charAt(0).toUpperCase()}${period.slice(1)}` as RetentionOption;
export const RETENTION_OPTIONS: readonly RetentionOption[] = RETENTION_PERIODS.map(retentionOption);

export const RetentionSchema = z
  .object({
    keepLast: KeepCount.optional(),
    keepHourly: KeepCount.optional(),
    keepDaily: KeepCount.optional(),
    keepWeekly: KeepCount.optional(),
    keepMonthly: KeepCount.optional(),
    keepYearly: KeepCount.optional(),
    /** the zone hours, days, weeks, months and years are counted in (PBS: the server's local time); default UTC */
    timeZone: TimeZoneSchema.optional(),
  })
  .strict()
  // PBS keeps everything when no option is given; here that is no retention at all, said by leaving it out.
  .refine((r) => RETENTION_OPTIONS.some((o) => r[o] !== undefined), `at least one of ${RETENTION_OPTIONS.join(', ')}`);
export type Retention = z.infer<typeof RetentionSchema>;

export interface PruneOutcome {
  /** backups of this instance and type, newest first, that the retention keeps */
  kept: string[];
  deleted: string[];
  /** deletes the image service refused: the next scheduled backup's prune tries again */
  failed: { imageId: string; error: string }[];
}

/** What the prune step asks of the control worker. */
export interface PruneRequest {
  instanceUuid: string;
  /** the backup just made: always kept, whatever the clock says */
  imageId: string;
  backupType: string;
  retention: Retention;
}
