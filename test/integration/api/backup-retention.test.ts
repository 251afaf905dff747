// Scheduled backups end to end (real Temporal Schedule and workflows, real image service, real
// control activities and API; the host side stubbed as in the API stack): a schedule with
// keep-last 2 triggered four times leaves the two newest backups, each naming its schedule; an
// earlier createBackup of the type counts toward the retention and goes too. The backups listing
// shows them to the project (type, kind, size, age, schedule) and to no other; the metrics count the
// backups by type, what the retention pruned, and the age of the instance's last good backup; the
// control worker's refresh exports the schedule's allowance from Temporal's listing while it is
// there and not paused.
import pino from 'pino';
import { Registry } from 'prom-client';
import { backupScheduleId, snapshotWorkflowId, type ScheduledBackupResult } from '../../../src/contract';
import { BACKUP_METRIC_NAMES, createSnapshotMetrics, type SnapshotMetrics } from '../../../src/observability';
import { BackupSchedules } from '../../../src/temporal/backup-schedules';
import { refreshBackupAges } from '../../../src/workers/backup-age-refresh';
import { call, createBackup, eventually } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';

let stack: ApiStack;
let metrics: SnapshotMetrics;
let schedules: BackupSchedules;
beforeAll(async () => {
  metrics = createSnapshotMetrics();
  stack = await startApiStack({ workerMetrics: metrics });
  schedules = new BackupSchedules(stack.temporal);
});
afterAll(async () => {
  await stack?.stop();
});

async function metric(name: string, labels: Record<string, string>, registry: Registry = metrics.registry): Promise<number | undefined> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

/** Triggers the schedule and waits for its run (and the backup it started) to end. */
async function runOnce(uuid: string, runsBefore: number): Promise<ScheduledBackupResult> {
  await schedules.trigger(uuid);
  const run = await eventually(async () => {
    const recent = (await schedules.describe(uuid))?.recentRuns ?? [];
    return recent.length > runsBefore ? recent[recent.length - 1] : undefined;
  }, 'the triggered run');
  return stack.temporal.workflow.getHandle(run.workflowId).result();
}

/** The schedule allowance the control worker's refresh exports for the instance, once it is as expected (visibility lags). */
async function allowanceOnceListed(uuid: string, expected: (value: number | undefined) => boolean): Promise<number | undefined> {
  const found = await eventually(async () => {
    await refreshBackupAges({ images: stack.imageClient(), metrics: metrics.backups, log: pino({ level: 'silent' }), schedules });
    const value = await metric(BACKUP_METRIC_NAMES.scheduleMaxAge, { instance_uuid: uuid, backup_type: 'daily' });
    return expected(value) ? { value } : undefined;
  }, 'the schedule allowance as expected');
  return found.value;
}

it('keeps the newest two of four scheduled backups (and prunes an older createBackup), lists them to their project and counts them', async () => {
  const instance = await stack.addInstance({ projectId: 'demo' });
  const uuid = instance.uuid;
  const manual = await createBackup(stack.api.url, TOKENS.demo, uuid, { name: 'by hand', backup_type: 'daily', rotation: 10 }, { 'OpenStack-API-Version': 'compute 2.45' });
  expect(manual.status).toBe(202);
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).result();

  // Never due by itself: only the triggers run it.
  await schedules.create({ uuid, projectId: 'demo' }, { cron: '0 3 1 1 *' }, { backupType: 'daily', rotation: 10, retention: { keepLast: 2 } });
  const made: string[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const result = await runOnce(uuid, i);
      expect(result.started).toBe(true);
      made.push(result.imageId ?? '');
    }
    // A yearly cron: five next times listed, a leap year among their gaps, so two periods of 366
    // days, no jitter, and the run's hour. Paused, it allows nothing (the listing says so eventually).
    expect(await allowanceOnceListed(uuid, (v) => v !== undefined)).toBe(2 * 366 * 86_400 + 3600);
    await schedules.pause(uuid, 'maintenance');
    expect(await allowanceOnceListed(uuid, (v) => v === undefined)).toBeUndefined();
    await schedules.resume(uuid);
    expect(await allowanceOnceListed(uuid, (v) => v !== undefined)).toBe(2 * 366 * 86_400 + 3600);
  } finally {
    await schedules.delete(uuid);
  }
  expect(await allowanceOnceListed(uuid, (v) => v === undefined)).toBeUndefined();

  const active = (await stack.imagesOf(uuid)).filter((i) => i.status === 'active');
  expect(active.map((i) => i.id).sort()).toEqual(made.slice(2).sort());
  expect(active.every((i) => i.properties.backup_schedule_id === backupScheduleId(uuid) && i.properties.backup_type === 'daily')).toBe(true);

  const listed = await call(stack.api.url, { path: `/v2.1/servers/${uuid}/os-backups`, token: TOKENS.demo });
  expect(listed.status).toBe(200);
  const { backups } = listed.json as { backups: Record<string, unknown>[] };
  expect(backups.map((b) => b.id)).toEqual([made[3], made[2]]);
  for (const b of backups) {
    expect(b).toMatchObject({ server_id: uuid, project_id: 'demo', backup_type: 'daily', kind: 'full', parent_image_id: null, status: 'active', backup_schedule_id: backupScheduleId(uuid) });
    expect(b.size).toBeGreaterThan(0);
    expect(b.age_seconds).toBeGreaterThanOrEqual(0);
    expect(b.age_seconds).toBeLessThan(600);
  }
  // Another project sees neither the server nor its backups; only admins list every project's.
  expect((await call(stack.api.url, { path: `/v2.1/servers/${uuid}/os-backups`, token: TOKENS.other })).status).toBe(404);
  const othersAll = await call(stack.api.url, { path: '/v2.1/os-backups', token: TOKENS.other });
  expect((othersAll.json as { backups: { server_id: string }[] }).backups.filter((b) => b.server_id === uuid)).toEqual([]);
  expect((await call(stack.api.url, { path: '/v2.1/os-backups?all_tenants=1', token: TOKENS.demo })).status).toBe(403);
  const adminAll = await call(stack.api.url, { path: '/v2.1/os-backups?all_tenants=1&backup_type=daily', token: TOKENS.admin });
  expect((adminAll.json as { backups: { server_id: string; id: string }[] }).backups.filter((b) => b.server_id === uuid).map((b) => b.id)).toEqual([made[3], made[2]]);
  expect((await call(stack.api.url, { path: '/v2.1/os-backups?sort=x', token: TOKENS.demo })).status).toBe(400);

  // Five backups of the type started and completed (one by hand); the retention pruned three (the
  // manual one and the two oldest scheduled), the rotation (10) none.
  expect(await metric(BACKUP_METRIC_NAMES.started, { backup_type: 'daily' })).toBe(5);
  expect(await metric(BACKUP_METRIC_NAMES.completed, { backup_type: 'daily' })).toBe(5);
  expect(await metric(BACKUP_METRIC_NAMES.failed, { backup_type: 'daily' })).toBeUndefined();
  expect(await metric(BACKUP_METRIC_NAMES.pruned, { backup_type: 'daily' })).toBe(3);
  expect(await metric(BACKUP_METRIC_NAMES.rotated, { backup_type: 'daily' })).toBeUndefined();
  const age = await metric(BACKUP_METRIC_NAMES.lastSuccessAge, { instance_uuid: uuid, backup_type: 'daily' });
  expect(age).toBeGreaterThanOrEqual(0);
  expect(age).toBeLessThan(600);
});
