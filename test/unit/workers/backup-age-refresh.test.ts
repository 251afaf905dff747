// The control worker's refresh of its backup gauges: the last good backup's age from the image
// service and each schedule's allowance from Temporal's schedule listing. A deleted or paused
// schedule's series goes at the next refresh; a schedule with no memo (no backup_type) has none;
// a source that fails keeps its gauge as it was, logs a warning and leaves the other's refresh alone.
import pino from 'pino';
import { Registry } from 'prom-client';
import type { Image, ImageClient } from '../../../src/images/client';
import { BACKUP_METRIC_NAMES, createBackupMetrics } from '../../../src/observability';
import type { BackupScheduleListing } from '../../../src/temporal/backup-schedules';
import { refreshBackupAges, startBackupAgeRefresh } from '../../../src/workers/backup-age-refresh';

const HOUR = 3600;
const NOW = Date.parse('2026-03-01T12:00:00Z');

function listing(instanceUuid: string, o: { backupType?: string; intervalSeconds?: number; nextRuns?: string[]; paused?: boolean } = {}): BackupScheduleListing {
  return {
    scheduleId: `backup-${instanceUuid}`,
    instanceUuid,
    projectId: 'p',
    backup: o.backupType === undefined ? null : { backupType: o.backupType, rotation: 7 },
    spec: null,
    paused: o.paused ?? false,
    note: null,
    timing: { intervalsSeconds: o.intervalSeconds === undefined ? [] : [o.intervalSeconds], jitterSeconds: 0 },
    nextRuns: o.nextRuns ?? [],
    recentRuns: [],
  };
}

function backupImage(instanceUuid: string, backupType: string, createdAt: string): Image {
  return {
    id: `${instanceUuid}-${createdAt}`, name: 'b', status: 'active', container_format: 'bare', disk_format: 'qcow2', visibility: 'private', owner: 'p',
    size: 1, checksum: null, os_hash_algo: null, os_hash_value: null, created_at: createdAt, updated_at: createdAt,
    properties: { image_type: 'backup', instance_uuid: instanceUuid, backup_type: backupType },
  };
}

function setup() {
  const registry = new Registry();
  const metrics = createBackupMetrics(registry, () => NOW);
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
  const sources = {
    images: [backupImage('i1', 'daily', '2026-03-01T11:00:00Z')] as Image[] | Error,
    schedules: [] as BackupScheduleListing[] | Error,
  };
  const answer = async <T>(value: T | Error): Promise<T> => {
    if (value instanceof Error) throw value;
    return value;
  };
  const images = { list: async () => answer(sources.images) } as unknown as ImageClient;
  const schedules = { list: async () => answer(sources.schedules) };
  const series = async (name: string) =>
    Object.fromEntries(((await registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => [`${v.labels.instance_uuid}/${v.labels.backup_type}`, v.value]));
  return { metrics, log, warnings, sources, images, schedules, series, refresh: () => refreshBackupAges({ images, metrics, log, schedules }) };
}

it('exports each unpaused schedule\'s allowance under its backup_type; a deleted or paused one is gone at the next refresh', async () => {
  const t = setup();
  const daily = ['2026-03-02T03:00:00Z', '2026-03-03T03:00:00Z', '2026-03-04T03:00:00Z'];
  t.sources.schedules = [
    listing('i1', { backupType: 'daily', nextRuns: daily }),
    listing('i2', { backupType: 'hourly', intervalSeconds: HOUR }),
    listing('i3', { backupType: 'weekly', intervalSeconds: 7 * 24 * HOUR, paused: true }),
    listing('i4', { intervalSeconds: HOUR }), // made elsewhere: no memo, no backup_type
  ];
  await t.refresh();
  expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i1/daily': 2 * 24 * HOUR + HOUR, 'i2/hourly': 3 * HOUR });
  expect(await t.series(BACKUP_METRIC_NAMES.lastSuccessAge)).toEqual({ 'i1/daily': HOUR });

  t.sources.schedules = [listing('i2', { backupType: 'hourly', intervalSeconds: HOUR, paused: true })];
  await t.refresh();
  expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({});
  expect(t.warnings).toEqual([]);
});

it('keeps the allowances it knows when Temporal cannot be reached, with a warning, and still refreshes the ages', async () => {
  const t = setup();
  t.sources.schedules = [listing('i2', { backupType: 'hourly', intervalSeconds: HOUR })];
  await t.refresh();
  t.sources.schedules = new Error('14 UNAVAILABLE: connection refused');
  t.sources.images = [backupImage('i2', 'hourly', '2026-03-01T11:30:00Z')];
  await t.refresh();
  expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i2/hourly': 3 * HOUR });
  expect(await t.series(BACKUP_METRIC_NAMES.lastSuccessAge)).toEqual({ 'i2/hourly': HOUR / 2 });
  expect(t.warnings).toEqual(['could not list backup schedules for the schedule allowance gauge; keeping what is known']);
});

it('keeps the ages it knows when the image service fails, and still refreshes the allowances', async () => {
  const t = setup();
  await t.refresh();
  t.sources.images = new Error('image service down');
  t.sources.schedules = [listing('i1', { backupType: 'daily', intervalSeconds: 24 * HOUR })];
  await t.refresh();
  expect(await t.series(BACKUP_METRIC_NAMES.lastSuccessAge)).toEqual({ 'i1/daily': HOUR });
  expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i1/daily': 49 * HOUR });
  expect(t.warnings).toEqual(['could not list backups for the last-backup age gauge; keeping what is known']);
});

it('refreshes at start and then every interval, until stopped', async () => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
  try {
    const t = setup();
    let listings = 0;
    const schedules = {
      list: async () => {
        listings += 1;
        return [listing('i1', { backupType: 'daily', intervalSeconds: listings * HOUR })];
      },
    };
    const refresh = startBackupAgeRefresh({ images: t.images, metrics: t.metrics, log: t.log, schedules, intervalMs: 60_000 });
    await jest.advanceTimersByTimeAsync(0);
    expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i1/daily': 3 * HOUR });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i1/daily': 5 * HOUR });
    refresh.stop();
    await jest.advanceTimersByTimeAsync(120_000);
    expect(listings).toBe(2);
  } finally {
    jest.useRealTimers();
  }
});

it('skips a tick while the last refresh still runs: a slow older listing never lands after a newer one', async () => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
  try {
    const t = setup();
    let listings = 0;
    let release: () => void = () => undefined;
    const slowFirst = new Promise<void>((resolve) => (release = resolve));
    const schedules = {
      list: async () => {
        listings += 1;
        if (listings === 1) await slowFirst;
        return [listing('i1', { backupType: 'daily', intervalSeconds: listings * HOUR })];
      },
    };
    const refresh = startBackupAgeRefresh({ images: t.images, metrics: t.metrics, log: t.log, schedules, intervalMs: 60_000 });
    await jest.advanceTimersByTimeAsync(150_000);
    expect(listings).toBe(1);
    release();
    await jest.advanceTimersByTimeAsync(0);
    expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i1/daily': 3 * HOUR });
    await jest.advanceTimersByTimeAsync(30_000);
    expect(listings).toBe(2);
    expect(await t.series(BACKUP_METRIC_NAMES.scheduleMaxAge)).toEqual({ 'i1/daily': 5 * HOUR });
    refresh.stop();
  } finally {
    jest.useRealTimers();
  }
});
