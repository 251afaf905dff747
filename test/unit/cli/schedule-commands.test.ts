// snapctl schedule create's command line: durations, and the PUT body it sends (or the usage error it stops with).
import { ExitCode } from '../../../src/cli/cli-errors';
import { parseDuration, scheduleBody } from '../../../src/cli/schedule-commands';

describe('parseDuration', () => {
  it.each([
    ['3600', 3600],
    ['90s', 90],
    ['30m', 1800],
    ['6h', 21_600],
    ['1d', 86_400],
  ])('%s is %d seconds', (text, seconds) => {
    expect(parseDuration('interval', text)).toBe(seconds);
  });

  it.each(['', '1.5h', '-5', '1w', '6 h', 'h'])('refuses %j as a usage error', (text) => {
    expect(() => parseDuration('jitter', text)).toThrow(expect.objectContaining({ exitCode: ExitCode.usage, message: expect.stringContaining('--jitter') }));
  });
});

describe('scheduleBody', () => {
  it('maps the options onto the API body', () => {
    expect(scheduleBody({ cron: '0 3 * * *', timeZone: 'Europe/Berlin', jitter: '30m', type: 'daily', keep: '7' })).toEqual({
      backup_schedule: { cron: '0 3 * * *', time_zone: 'Europe/Berlin', jitter_seconds: 1800, backup_type: 'daily', rotation: 7 },
    });
    expect(scheduleBody({ interval: '6h', type: 'hourly', keep: '4' })).toEqual({ backup_schedule: { interval_seconds: 21_600, backup_type: 'hourly', rotation: 4 } });
  });

  it('adds the --keep-X options as the retention', () => {
    expect(scheduleBody({ cron: '@daily', type: 'daily', keep: '30', retention: { last: '3', weekly: '8', daily: undefined } })).toEqual({
      backup_schedule: { cron: '@daily', backup_type: 'daily', rotation: 30, retention: { keep_last: 3, keep_weekly: 8 } },
    });
    expect(() => scheduleBody({ cron: '@daily', type: 'daily', keep: '30', retention: { monthly: 'twelve' } })).toThrow(/--keep-monthly/);
  });

  it.each([
    ['both --cron and --interval', { cron: '@daily', interval: '1h', type: 'd', keep: '1' }, /exactly one of --cron and --interval/],
    ['neither', { type: 'd', keep: '1' }, /exactly one/],
    ['no --type', { cron: '@daily', keep: '1' }, /--type/],
    ['no --keep', { cron: '@daily', type: 'd' }, /--keep/],
    ['a --keep that is no count', { cron: '@daily', type: 'd', keep: 'seven' }, /--keep/],
  ])('%s is a usage error', (_what, options, message) => {
    expect(() => scheduleBody(options)).toThrow(message);
  });
});
