// A backup schedule's spec: exactly one of a cron expression (five fields, or @daily and friends)
// and an interval, an optional IANA time zone and jitter; anything else is refused before Temporal
// is asked. One schedule per instance: its id is the instance's.
import { backupScheduleId, BackupScheduleSpecSchema } from '../../../src/contract';

const ok = (spec: unknown) => BackupScheduleSpecSchema.safeParse(spec).success;

describe('backup schedule spec', () => {
  it('takes a cron expression or an interval, with a time zone and jitter', () => {
    expect(ok({ cron: '0 3 * * *' })).toBe(true);
    expect(ok({ cron: '@daily', timeZone: 'Europe/Berlin', jitterSeconds: 600 })).toBe(true);
    expect(ok({ intervalSeconds: 3600 })).toBe(true);
  });

  it.each([
    ['both', { cron: '0 3 * * *', intervalSeconds: 60 }],
    ['neither', {}],
    ['a cron of four fields', { cron: '0 3 * *' }],
    ['a cron with its own zone prefix', { cron: 'CRON_TZ=UTC 0 3 * * *' }],
    ['a zero interval', { intervalSeconds: 0 }],
    ['a negative jitter', { intervalSeconds: 60, jitterSeconds: -1 }],
    ['a time zone with a control character', { cron: '@daily', timeZone: 'UTC\n' }],
    ['an unknown time zone', { cron: '@daily', timeZone: 'Mars/Olympus_Mons' }],
    ['an unknown key', { cron: '@daily', every: 'day' }],
  ])('refuses %s', (_what, spec) => {
    expect(ok(spec)).toBe(false);
  });

  it('names one schedule per instance', () => {
    expect(backupScheduleId('7c1a0e8e-0f37-4f53-9d4c-6b8f7a3e2b10')).toBe('backup-7c1a0e8e-0f37-4f53-9d4c-6b8f7a3e2b10');
  });
});
