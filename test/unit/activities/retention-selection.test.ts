// PBS's prune rule (compute_prune_info) against the cases of Proxmox Backup Server's own prune
// tests (tests/prune.rs: test_prune_simple, test_prune_simple2, test_prune_hourly), and what they
// imply: periods covered by an earlier rule do not count, ISO weeks across a year end, time zones,
// and the selection being stable when what it removed is gone (a prune finished after a crash).
import { selectRetained, isoWeek, type DatedBackup } from '../../../src/activities/retention-selection';
import { RetentionSchema, type Retention } from '../../../src/contract';

/** Backups named by their time, newest first as the activity hands them over. */
function backups(times: readonly string[]): DatedBackup[] {
  return [...times].sort((a, b) => b.localeCompare(a)).map((t) => ({ id: t, createdAt: new Date(t) }));
}

function kept(times: readonly string[], retention: Retention): string[] {
  return [...selectRetained(backups(times), retention)].sort();
}

function removed(times: readonly string[], retention: Retention): string[] {
  const keep = selectRetained(backups(times), retention);
  return [...times].filter((t) => !keep.has(t)).sort();
}

describe("PBS's test_prune_simple", () => {
  const list = ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z', '2019-12-04T12:59:15Z'];
  it.each<[string, Retention, string[]]>([
    ['keep-last 4', { keepLast: 4 }, []],
    ['keep-last 3', { keepLast: 3 }, ['2019-12-02T11:59:15Z']],
    ['keep-last 2', { keepLast: 2 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z']],
    ['keep-last 1', { keepLast: 1 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-last 2 + keep-daily 2', { keepLast: 2, keepDaily: 2 }, []],
    ['keep-daily 3', { keepDaily: 3 }, ['2019-12-04T11:59:15Z']],
    ['keep-daily 2', { keepDaily: 2 }, ['2019-12-02T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-weekly 5 (one week)', { keepWeekly: 5 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-daily 1 + keep-weekly 5', { keepDaily: 1, keepWeekly: 5 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-monthly 6 (one month)', { keepMonthly: 6 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-yearly 7 (one year)', { keepYearly: 7 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-weekly 5 + monthly 6 + yearly 7', { keepWeekly: 5, keepMonthly: 6, keepYearly: 7 }, ['2019-12-02T11:59:15Z', '2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
  ])('%s removes what PBS removes', (_name, retention, expected) => {
    expect(removed(list, retention)).toEqual(expected);
  });
});

describe("PBS's test_prune_simple2", () => {
  const list = [
    '2018-11-15T11:59:15Z',
    '2019-11-15T11:59:15Z',
    '2019-11-21T11:59:15Z',
    '2019-11-22T11:59:15Z',
    '2019-11-29T11:59:15Z',
    '2019-12-01T11:59:15Z',
    '2019-12-02T11:59:15Z',
    '2019-12-03T11:59:15Z',
    '2019-12-04T11:59:15Z',
  ];
  it.each<[string, Retention, string[]]>([
    ['keep-daily 1', { keepDaily: 1 }, ['2019-12-04T11:59:15Z']],
    ['keep-last 1 + keep-daily 1: the day of the last is covered, the next day counts', { keepLast: 1, keepDaily: 1 }, ['2019-12-03T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['keep-daily 1 + keep-weekly 1: the week of the daily is covered, the week before counts', { keepDaily: 1, keepWeekly: 1 }, ['2019-12-01T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['daily 1 + weekly 1 + monthly 1', { keepDaily: 1, keepWeekly: 1, keepMonthly: 1 }, ['2019-11-22T11:59:15Z', '2019-12-01T11:59:15Z', '2019-12-04T11:59:15Z']],
    ['monthly 1 + yearly 1', { keepMonthly: 1, keepYearly: 1 }, ['2018-11-15T11:59:15Z', '2019-12-04T11:59:15Z']],
  ])('%s keeps what PBS keeps', (_name, retention, expected) => {
    expect(kept(list, retention)).toEqual(expected);
  });
});

describe("PBS's test_prune_hourly", () => {
  const list = ['2019-11-15T09:39:15Z', '2019-11-15T10:49:15Z', '2019-11-15T10:59:15Z', '2019-11-15T11:39:15Z', '2019-11-15T11:49:15Z', '2019-11-15T11:59:15Z'];
  it('keep-hourly 3 removes the older backups of each hour', () => {
    expect(removed(list, { keepHourly: 3 })).toEqual(['2019-11-15T10:49:15Z', '2019-11-15T11:39:15Z', '2019-11-15T11:49:15Z']);
  });
  it('keep-hourly 2 keeps the newest of the last two hours', () => {
    expect(kept(list, { keepHourly: 2 })).toEqual(['2019-11-15T10:59:15Z', '2019-11-15T11:59:15Z']);
  });
});

describe('the rule beyond the examples', () => {
  it('a backup removed by one rule (older in a period it kept) is not kept by a later rule', () => {
    // keep-daily 1 keeps 12-04 12:59 and marks 12-04 11:59 for removal; keep-weekly 2 passes both
    // over (its week is covered), keeps the week before's newest and marks 11-27 for removal.
    const list = ['2019-11-27T08:00:00Z', '2019-11-28T08:00:00Z', '2019-12-04T11:59:15Z', '2019-12-04T12:59:15Z'];
    expect(kept(list, { keepDaily: 1, keepWeekly: 2 })).toEqual(['2019-11-28T08:00:00Z', '2019-12-04T12:59:15Z']);
  });

  it('counts ISO weeks: 2020-12-31 (Thursday) and 2021-01-03 (Sunday) are week 53 of 2020', () => {
    expect(isoWeek(2020, 12, 31)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2021, 1, 4)).toEqual({ year: 2021, week: 1 });
    expect(isoWeek(2019, 12, 30)).toEqual({ year: 2020, week: 1 });
    expect(kept(['2020-12-31T10:00:00Z', '2021-01-03T10:00:00Z', '2021-01-04T10:00:00Z'], { keepWeekly: 2 })).toEqual(['2021-01-03T10:00:00Z', '2021-01-04T10:00:00Z']);
  });

  it('reads days in the retention time zone: 23:30 UTC is the next day in Berlin', () => {
    const list = ['2019-12-03T12:00:00Z', '2019-12-03T23:30:00Z'];
    expect(kept(list, { keepDaily: 2 })).toEqual(['2019-12-03T23:30:00Z']);
    expect(kept(list, { keepDaily: 2, timeZone: 'Europe/Berlin' })).toEqual(list);
    expect(kept(['2019-12-03T23:30:00Z', '2019-12-04T10:00:00Z'], { keepDaily: 5 })).toEqual(['2019-12-03T23:30:00Z', '2019-12-04T10:00:00Z']);
    expect(kept(['2019-12-03T23:30:00Z', '2019-12-04T10:00:00Z'], { keepDaily: 5, timeZone: 'Europe/Berlin' })).toEqual(['2019-12-04T10:00:00Z']);
  });

  it('the order given decides, not the clock: the head of the list (the new backup) is the newest', () => {
    const list: DatedBackup[] = [
      { id: 'new', createdAt: new Date('2019-12-01T00:00:00Z') },
      { id: 'clock-ahead', createdAt: new Date('2019-12-05T00:00:00Z') },
    ];
    expect([...selectRetained(list, { keepLast: 1 })]).toEqual(['new']);
  });

  it('is stable: run again over what it kept, it keeps the same (a prune cut short finishes the same)', () => {
    const times = Array.from({ length: 60 }, (_, i) => new Date(Date.UTC(2024, 0, 1) + i * 9 * 3600_000).toISOString());
    const retention: Retention = { keepLast: 3, keepDaily: 4, keepWeekly: 2, keepMonthly: 1 };
    const first = kept(times, retention);
    expect(first.length).toBeLessThan(times.length);
    expect(kept(first, retention)).toEqual(first);
    // With only some of the removals done:
    const halfDone = times.filter((t, i) => first.includes(t) || i % 2 === 0);
    expect(kept(halfDone, retention)).toEqual(first);
  });
});

describe('RetentionSchema', () => {
  it('takes PBS counts of at least 1 and a zone', () => {
    expect(RetentionSchema.parse({ keepLast: 3, keepDaily: 7, timeZone: 'Europe/Berlin' })).toEqual({ keepLast: 3, keepDaily: 7, timeZone: 'Europe/Berlin' });
  });
  it.each([
    [{}, /at least one of keepLast/],
    [{ timeZone: 'UTC' }, /at least one of keepLast/],
    [{ keepLast: 0 }, /greater than or equal to 1/],
    [{ keepDaily: 1.5 }, /integer/],
    [{ keepDaily: 1, keepForever: true }, /Unrecognized key/],
    [{ keepDaily: 1, timeZone: 'Mars/Olympus' }, /IANA time zone/],
  ])('refuses %j', (value, message) => {
    const parsed = RetentionSchema.safeParse(value);
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(parsed.error.message).toMatch(message);
  });
});
