// How old an instance's last good backup may grow under its schedule before something is wrong
// (what docs/alerts/backups.rules.yml compares the age with). Worked from what a schedule listing
// gives, so a fleet's schedules cost one paged listing, not one describe each.
//
// The last good backup's age counts from its image's creation, when its run started, and it is
// replaced once the next backup goes active. A run may be skipped (overlap SKIP, or scheduledBackup
// skipping itself while another snapshot of the instance runs), so the next backup may start two
// periods plus its jitter later, and then takes its own time. Hence two periods + the jitter + an
// hour for the run.
import type { BackupScheduleListing } from './backup-schedules';

/** What a backup run itself may take before it counts (the age runs on until its image is active); SNAP_BACKUP_RUN_ALLOWANCE_S. */
export const BACKUP_RUN_ALLOWANCE_SECONDS = 3600;

/**
 * The schedule's period in seconds: the widest gap between its runs as Temporal lists them, from the
 * newest run it took through its next five (so the gap the current backup must last through counts:
 * after Friday's run of a weekdays-only cron, the weekend), and never less than its shortest interval
 * (a run comes at least that often unless skipped). The listed times already carry their jitter, so a
 * gap may be up to one jitter shorter than the calendar's: it is added. null when there is nothing to
 * go by (no interval, fewer than two times: a schedule that ends).
 */
export function schedulePeriodSeconds(schedule: Pick<BackupScheduleListing, 'timing' | 'nextRuns' | 'recentRuns'>): number | null {
  const intervals = schedule.timing.intervalsSeconds.filter((s) => s > 0);
  const interval = intervals.length > 0 ? Math.min(...intervals) : 0;
  const taken = schedule.recentRuns.map((r) => Date.parse(r.scheduledAt)).filter((t) => Number.isFinite(t));
  const newestTaken = taken.length > 0 ? [Math.max(...taken)] : [];
  const times = [...newestTaken, ...schedule.nextRuns.map((t) => Date.parse(t)).filter((t) => Number.isFinite(t))].sort((a, b) => a - b);
  const widest = Math.max(0, ...times.slice(1).map((t, i) => (t - (times[i] ?? t)) / 1000));
  const period = Math.max(interval, widest > 0 ? widest + schedule.timing.jitterSeconds : 0);
  return period > 0 ? period : null;
}

/**
 * Seconds the last good backup may be old under this schedule; null for a paused schedule (pausing
 * is the operator's decision, not a fault to alert on) and for one whose period cannot be told.
 */
export function scheduleMaxAgeSeconds(schedule: Pick<BackupScheduleListing, 'paused' | 'timing' | 'nextRuns' | 'recentRuns'>, runAllowanceSeconds = BACKUP_RUN_ALLOWANCE_SECONDS): number | null {
  if (schedule.paused) return null;
  const period = schedulePeriodSeconds(schedule);
  if (period === null) return null;
  return Math.ceil(2 * period + schedule.timing.jitterSeconds + runAllowanceSeconds);
}
