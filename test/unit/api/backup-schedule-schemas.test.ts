// The os-backup-schedule body: what it accepts becomes the schedule contract's spec unchanged, what
// the contract would refuse it refuses; and the snake_case view of a schedule.
import { BackupScheduleSpecSchema, RetentionSchema } from '../../../src/contract';
import { MAX_SCHEDULE_ROTATION, ScheduleActionBodySchema, ScheduleBodySchema, scheduleView, specOf } from '../../../src/api/backup-schedule-schemas';

const body = (extra: Record<string, unknown>) => ({ backup_schedule: { backup_type: 'daily', rotation: 7, ...extra } });

describe('ScheduleBodySchema', () => {
  it.each([
    [{ cron: '0 3 * * *', time_zone: 'Europe/Berlin', jitter_seconds: 1800 }, { cron: '0 3 * * *', timeZone: 'Europe/Berlin', jitterSeconds: 1800 }],
    [{ cron: '@weekly' }, { cron: '@weekly' }],
    [{ interval_seconds: 3600, jitter_seconds: 0 }, { intervalSeconds: 3600, jitterSeconds: 0 }],
  ])('accepts %j as the contract spec %j', (timing, spec) => {
    const parsed = specOf(ScheduleBodySchema.parse(body(timing)));
    expect(parsed).toEqual({ spec, backup: { backupType: 'daily', rotation: 7 } });
    expect(BackupScheduleSpecSchema.parse(parsed.spec)).toEqual(spec);
  });

  it.each([
    ['cron and interval', { cron: '@daily', interval_seconds: 60 }],
    ['no timing', {}],
    ['a four-field cron', { cron: '0 3 * *' }],
    ['a TZ prefix in the cron', { cron: 'CRON_TZ=UTC 0 3 * * *' }],
    ['an unknown zone', { cron: '@daily', time_zone: 'Nowhere/Land' }],
    ['a control character in the zone', { cron: '@daily', time_zone: 'UTC\n' }],
    ['a fractional interval', { interval_seconds: 1.5 }],
    ['an interval over a year', { interval_seconds: 367 * 86_400 }],
    ['a negative jitter', { cron: '@daily', jitter_seconds: -5 }],
    ['rotation 0', { cron: '@daily', rotation: 0 }],
    ['rotation over the bound', { cron: '@daily', rotation: MAX_SCHEDULE_ROTATION + 1 }],
    ['rotation as a string', { cron: '@daily', rotation: '7' }],
    ['an empty backup_type', { cron: '@daily', backup_type: '' }],
    ['a backup_type with a newline', { cron: '@daily', backup_type: 'daily\n' }],
    ['an unknown field', { cron: '@daily', keep_last: 3 }],
  ])('refuses %s', (_what, extra) => {
    expect(ScheduleBodySchema.safeParse(body(extra)).success).toBe(false);
  });
});

describe('a schedule body\'s retention', () => {
  it('becomes the contract\'s retention (PBS\'s keep options) and is shown back in snake_case', () => {
    const parsed = specOf(ScheduleBodySchema.parse(body({ cron: '@daily', retention: { keep_last: 3, keep_daily: 7, keep_monthly: 12, time_zone: 'Europe/Berlin' } })));
    expect(parsed.backup).toEqual({ backupType: 'daily', rotation: 7, retention: { keepLast: 3, keepDaily: 7, keepMonthly: 12, timeZone: 'Europe/Berlin' } });
    expect(RetentionSchema.parse(parsed.backup.retention)).toEqual(parsed.backup.retention);
  });

  it.each([
    ['no keep option', { time_zone: 'UTC' }, []],
    ['a zero count', { keep_daily: 0 }, ['retention', 'keep_daily']],
    ['a fractional count', { keep_last: 1.5 }, ['retention', 'keep_last']],
    ['an unknown zone', { keep_last: 1, time_zone: 'Nowhere/Land' }, ['retention', 'time_zone']],
    ['PBS\'s dashed name', { 'keep-last': 1 }, []],
  ])('refuses %s, naming the field', (_what, retention, path) => {
    const result = ScheduleBodySchema.safeParse(body({ cron: '@daily', retention }));
    expect(result.success).toBe(false);
    if (!result.success && path.length > 0) expect(result.error.issues[0]?.path).toEqual(['backup_schedule', ...path]);
  });
});

describe('ScheduleActionBodySchema', () => {
  it('takes pause with or without a note, resume and trigger with null', () => {
    expect(ScheduleActionBodySchema.parse({ pause: { note: 'upgrade' } })).toEqual({ pause: { note: 'upgrade' } });
    expect(ScheduleActionBodySchema.parse({ pause: null })).toEqual({ pause: null });
    expect(ScheduleActionBodySchema.parse({ trigger: null })).toEqual({ trigger: null });
    expect(ScheduleActionBodySchema.safeParse({ trigger: { overlap: 'all' } }).success).toBe(false);
    expect(ScheduleActionBodySchema.safeParse({ pause: { note: 'x\u0007' } }).success).toBe(false);
  });
});

describe('scheduleView', () => {
  it('names every field in snake_case, null where the spec has none, the catch-up window on show only', () => {
    const listing = {
      scheduleId: 'backup-u',
      instanceUuid: 'u',
      projectId: 'demo',
      backup: { backupType: 'daily', rotation: 7 },
      spec: { intervalSeconds: 60 },
      paused: true,
      note: 'n',
      timing: { intervalsSeconds: [60], jitterSeconds: 0 },
      nextRuns: ['2026-01-01T00:00:00.000Z'],
      recentRuns: [{ scheduledAt: 'a', takenAt: 'b', workflowId: 'w' }],
    };
    expect(scheduleView(listing, null)).toEqual({
      id: 'backup-u',
      server_id: 'u',
      project_id: 'demo',
      cron: null,
      interval_seconds: 60,
      time_zone: null,
      jitter_seconds: null,
      backup_type: 'daily',
      rotation: 7,
      retention: null,
      paused: true,
      note: 'n',
      next_runs: ['2026-01-01T00:00:00.000Z'],
      recent_runs: [{ scheduled_at: 'a', taken_at: 'b', workflow_id: 'w' }],
      temporal_ui_url: null,
    });
    expect(scheduleView({ ...listing, backup: { ...listing.backup, retention: { keepLast: 2, timeZone: 'UTC' } } }, null).retention).toEqual({ keep_last: 2, time_zone: 'UTC' });
    expect(scheduleView({ ...listing, catchupWindowSeconds: 3600 }, 'http://ui/x')).toMatchObject({ catchup_window_seconds: 3600, temporal_ui_url: 'http://ui/x' });
  });
});
