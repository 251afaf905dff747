// How old a schedule lets an instance's last good backup grow: two periods (one run may be skipped)
// + the jitter + an hour for the run; the period an interval's, or for a cron the widest gap between
// the next action times Temporal lists (which already carry the jitter); nothing for a paused
// schedule or one with no period to tell.
import { BACKUP_RUN_ALLOWANCE_SECONDS, scheduleMaxAgeSeconds, schedulePeriodSeconds } from '../../../src/temporal/schedule-allowance';

const HOUR = 3600;
const DAY = 24 * HOUR;
const at = (iso: string, plusSeconds = 0): string => new Date(Date.parse(iso) + plusSeconds * 1000).toISOString();
const schedule = (o: { intervals?: number[]; jitter?: number; nextRuns?: string[]; taken?: string[]; paused?: boolean } = {}) => ({
  paused: o.paused ?? false,
  timing: { intervalsSeconds: o.intervals ?? [], jitterSeconds: o.jitter ?? 0 },
  nextRuns: o.nextRuns ?? [],
  recentRuns: (o.taken ?? []).map((t) => ({ scheduledAt: t, takenAt: t, workflowId: `backup-${t}` })),
});

it('allows an interval schedule two periods plus the run allowance', () => {
  // The next runs of an interval schedule do not change its period.
  const s = schedule({ intervals: [6 * HOUR], nextRuns: [at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:00Z', 60)] });
  expect(schedulePeriodSeconds(s)).toBe(6 * HOUR);
  expect(scheduleMaxAgeSeconds(s)).toBe(12 * HOUR + BACKUP_RUN_ALLOWANCE_SECONDS);
  expect(BACKUP_RUN_ALLOWANCE_SECONDS).toBe(HOUR);
});

it('takes the shortest of several intervals, and adds the jitter once', () => {
  const s = schedule({ intervals: [DAY, 6 * HOUR], jitter: 1800 });
  expect(scheduleMaxAgeSeconds(s)).toBe(12 * HOUR + 1800 + HOUR);
});

it('reads a cron schedule\'s period from its next action times', () => {
  const daily = [0, 1, 2, 3, 4].map((d) => at('2026-01-05T03:00:00Z', d * DAY));
  expect(schedulePeriodSeconds(schedule({ nextRuns: daily }))).toBe(DAY);
  expect(scheduleMaxAgeSeconds(schedule({ nextRuns: daily }))).toBe(2 * DAY + HOUR);
  // Listed out of order, the same.
  expect(schedulePeriodSeconds(schedule({ nextRuns: [...daily].reverse() }))).toBe(DAY);
});

it('takes the widest gap of a cron that is not even (weekdays only: the weekend)', () => {
  // Thursday 2026-01-08 … Wednesday: Thu, Fri, Mon, Tue, Wed at 03:00.
  const weekdays = ['2026-01-08', '2026-01-09', '2026-01-12', '2026-01-13', '2026-01-14'].map((d) => at(`${d}T03:00:00Z`));
  expect(schedulePeriodSeconds(schedule({ nextRuns: weekdays }))).toBe(3 * DAY);
});

it("counts the gap from the newest run taken: after Friday's run of a weekdays-only cron, the weekend", () => {
  // Listed after Friday 2026-01-09's run: Mon … Fri, all one day apart; the backup must last Fri → Mon.
  const nextWeek = ['2026-01-12', '2026-01-13', '2026-01-14', '2026-01-15', '2026-01-16'].map((d) => at(`${d}T03:00:00Z`));
  expect(schedulePeriodSeconds(schedule({ nextRuns: nextWeek }))).toBe(DAY);
  const s = schedule({ nextRuns: nextWeek, taken: [at('2026-01-08T03:00:00Z'), at('2026-01-09T03:00:00Z')] });
  expect(schedulePeriodSeconds(s)).toBe(3 * DAY);
  expect(scheduleMaxAgeSeconds(s)).toBe(6 * DAY + HOUR);
});

it("never takes less than an interval schedule's interval, nor less than a gap its runs show (a skip set in the Temporal UI)", () => {
  const skipped = schedule({ intervals: [DAY], nextRuns: [at('2026-01-05T03:00:00Z'), at('2026-01-07T03:00:00Z')] });
  expect(schedulePeriodSeconds(skipped)).toBe(2 * DAY);
});

it('widens a cron\'s period by its jitter, as the listed times carry it, and adds the jitter again for the next run', () => {
  // Jittered by up to 30 min: 03:20, then 03:05 the next day (a gap of 23 h 45 min).
  const s = schedule({ jitter: 1800, nextRuns: [at('2026-01-05T03:20:00Z'), at('2026-01-06T03:05:00Z')] });
  expect(schedulePeriodSeconds(s)).toBe(DAY - 900 + 1800);
  expect(scheduleMaxAgeSeconds(s)).toBe(2 * (DAY + 900) + 1800 + HOUR);
});

it('allows nothing for a paused schedule, whatever its period', () => {
  expect(scheduleMaxAgeSeconds(schedule({ intervals: [HOUR], paused: true }))).toBeNull();
  expect(scheduleMaxAgeSeconds(schedule({ nextRuns: [at('2026-01-05T03:00:00Z'), at('2026-01-06T03:00:00Z')], paused: true }))).toBeNull();
});

it('allows nothing when the period cannot be told (a cron with fewer than two next times)', () => {
  expect(scheduleMaxAgeSeconds(schedule({ nextRuns: [at('2026-01-05T03:00:00Z')] }))).toBeNull();
  expect(scheduleMaxAgeSeconds(schedule())).toBeNull();
  expect(scheduleMaxAgeSeconds(schedule({ nextRuns: ['not a time', at('2026-01-05T03:00:00Z')] }))).toBeNull();
});

it("takes the operator's run allowance instead of the hour where one is set", () => {
  expect(scheduleMaxAgeSeconds(schedule({ intervals: [DAY] }), 4 * HOUR)).toBe(2 * DAY + 4 * HOUR);
  expect(scheduleMaxAgeSeconds(schedule({ intervals: [DAY] }), 0)).toBe(2 * DAY);
});
