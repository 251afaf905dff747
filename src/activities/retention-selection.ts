// Proxmox Backup Server's prune selection (pbs-datastore's compute_prune_info), rule for rule:
// the backups newest first; keep-last, -hourly, -daily, -weekly, -monthly, -yearly in that order,
// each keeping the newest backup of each of its periods until it has kept N periods. A backup
// another rule already kept is passed over, and so is every backup of a period that an earlier
// rule's kept backup lies in (such a period does not count toward N); a backup in a period this
// rule has already kept one of is marked for removal, so no later rule keeps it. What no rule keeps
// goes. Periods are read in the retention's time zone (PBS: the server's local time); weeks are
// ISO weeks (Monday to Sunday, the ISO week-numbering year).
import type { Retention } from '../contract';

export interface DatedBackup {
  id: string;
  createdAt: Date;
}

type Mark = 'keep' | 'remove';
type PeriodOf = (backup: DatedBackup) => string;

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
}

function localTimeReader(timeZone: string): (at: Date) => LocalTime {
  const format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' });
  return (at) => {
    const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
    return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour) };
  };
}

/** The ISO week of a calendar date: the week of its Thursday, in the Thursday's year. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const mondayBased = (date.getUTCDay() + 6) % 7;
  const thursday = new Date(date.getTime() + (3 - mondayBased) * 86_400_000);
  const weekYear = thursday.getUTCFullYear();
  const dayOfYear = Math.round((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / 86_400_000);
  return { year: weekYear, week: Math.floor(dayOfYear / 7) + 1 };
}

function periodRules(retention: Retention): [number | undefined, PeriodOf][] {
  const local = localTimeReader(retention.timeZone ?? 'UTC');
  const at = (b: DatedBackup): LocalTime => local(b.createdAt);
  return [
    [retention.keepLast, (b) => b.id],
    [retention.keepHourly, (b) => { const t = at(b); return `${t.year}/${t.month}/${t.day}/${t.hour}`; }],
    [retention.keepDaily, (b) => { const t = at(b); return `${t.year}/${t.month}/${t.day}`; }],
    [retention.keepWeekly, (b) => { const t = at(b); const w = isoWeek(t.year, t.month, t.day); return `${w.year}/W${w.week}`; }],
    [retention.keepMonthly, (b) => { const t = at(b); return `${t.year}/${t.month}`; }],
    [retention.keepYearly, (b) => `${at(b).year}`],
  ];
}

function markSelections(marks: Map<string, Mark>, newestFirst: readonly DatedBackup[], keep: number, periodOf: PeriodOf): void {
  const coveredEarlier = new Set(newestFirst.filter((b) => marks.get(b.id) === 'keep').map(periodOf));
  const kept = new Set<string>();
  for (const backup of newestFirst) {
    if (marks.has(backup.id)) continue;
    const period = periodOf(backup);
    if (coveredEarlier.has(period)) continue;
    if (kept.has(period)) {
      marks.set(backup.id, 'remove');
      continue;
    }
    if (kept.size >= keep) break;
    kept.add(period);
    marks.set(backup.id, 'keep');
  }
}

/** The ids the retention keeps, of backups given newest first (the order decides, not createdAt). */
export function selectRetained(newestFirst: readonly DatedBackup[], retention: Retention): Set<string> {
  const marks = new Map<string, Mark>();
  for (const [keep, periodOf] of periodRules(retention)) {
    if (keep !== undefined) markSelections(marks, newestFirst, keep, periodOf);
  }
  return new Set([...marks].filter(([, mark]) => mark === 'keep').map(([id]) => id));
}
