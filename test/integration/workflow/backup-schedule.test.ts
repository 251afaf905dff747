// An instance's backup schedule on the real Temporal server (stubbed activities): every 2 s it makes
// a backup and rotates; its description shows the next runs and the recent actions; paused it makes
// none; triggered it makes one now; a run due while another snapshot of the instance is in progress
// is skipped, and the running snapshot is left alone; deleted, it is gone.
import { randomUUID } from 'node:crypto';
import { backupScheduleId, CONTROL_TASK_QUEUE, snapshotWorkflowId, type ScheduledBackupResult } from '../../../src/contract';
import { BackupSchedules } from '../../../src/temporal/backup-schedules';
import { eventually } from '../../support/api-http';
import { startStubEnvironment, type StubEnvironment } from '../../support/stubs/stub-workers';

let env: StubEnvironment;
let schedules: BackupSchedules;
beforeAll(async () => {
  env = await startStubEnvironment();
  schedules = new BackupSchedules(env.client, { catchupWindowSeconds: 60 });
});
afterAll(async () => {
  await env?.stop();
});

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('runs backups at its interval, rotates each, pauses, triggers and goes away', async () => {
  const uuid = randomUUID();
  const inst = env.cloud.add({ uuid, guest: 'running', taskState: null });
  const created = await schedules.create({ uuid, projectId: 'p1' }, { intervalSeconds: 2, jitterSeconds: 0, timeZone: 'Europe/Berlin' }, { backupType: 'daily', rotation: 1, retention: { keepDaily: 7 } });
  try {
    expect(created).toMatchObject({ instanceUuid: uuid, projectId: 'p1', backup: { backupType: 'daily', rotation: 1 }, spec: { intervalSeconds: 2 }, paused: false, catchupWindowSeconds: 60 });
    expect(created.nextRuns.length).toBeGreaterThan(0);

    await eventually(async () => (inst.rotations.length >= 2 ? true : undefined), 'two scheduled backups', 60_000);
    expect(inst.rotations.every((r) => r.rotation === 1)).toBe(true);
    expect(inst.imageBackupType).toBe('daily');
    // Each image names its schedule; the retention, with no zone of its own, counts days in the schedule's.
    expect(inst.imageScheduleId).toBe(backupScheduleId(uuid));
    await eventually(async () => (inst.prunes.length >= 2 ? true : undefined), 'two prunes (each after its rotation)');
    expect(inst.prunes.every((p) => p.retention.keepDaily === 7 && p.retention.timeZone === 'Europe/Berlin')).toBe(true);
    const described = await schedules.describe(uuid);
    expect(described?.recentRuns.length).toBeGreaterThanOrEqual(2);

    await schedules.pause(uuid, 'maintenance');
    const paused = await schedules.describe(uuid);
    expect(paused).toMatchObject({ paused: true, note: 'maintenance' });
    await eventually(async () => (inst.taskState === null ? true : undefined), 'the run in flight to end');
    await pause(1000);
    const whilePaused = inst.rotations.length;
    await pause(5000);
    expect(inst.rotations.length).toBe(whilePaused);

    await schedules.trigger(uuid);
    await eventually(async () => (inst.rotations.length === whilePaused + 1 ? true : undefined), 'the triggered backup', 30_000);
    await schedules.resume(uuid);
    expect((await schedules.describe(uuid))?.paused).toBe(false);
  } finally {
    expect(await schedules.delete(uuid)).toBe(true);
  }
  expect(await schedules.describe(uuid)).toBeNull();
  expect(await schedules.delete(uuid)).toBe(false);
});

it('skips a run while another snapshot of the instance is in progress, and leaves that snapshot alone', async () => {
  const uuid = randomUUID();
  const inst = env.cloud.add({ uuid, guest: 'running', taskState: null, holdAt: 'uploadSnapshot' });
  const running = await env.client.workflow.start('snapshotInstance', { taskQueue: CONTROL_TASK_QUEUE, workflowId: snapshotWorkflowId(uuid), args: [{ instanceUuid: uuid, name: 'by hand' }] });
  await inst.held;
  await schedules.create({ uuid, projectId: null }, { cron: '0 3 * * *', timeZone: 'Europe/Berlin' }, { backupType: 'weekly', rotation: 4 });
  try {
    await schedules.trigger(uuid);
    const run = await eventually(async () => (await schedules.describe(uuid))?.recentRuns[0], 'the triggered run');
    const skipped: ScheduledBackupResult = await env.client.workflow.getHandle(run.workflowId).result();
    expect(skipped).toEqual({ started: false, skippedReason: 'a snapshot of the instance is in progress' });
    expect(inst.rotations).toEqual([]);
    expect((await schedules.describe(uuid))?.spec).toEqual({ cron: '0 3 * * *', timeZone: 'Europe/Berlin' });
  } finally {
    inst.release();
    await schedules.delete(uuid);
  }
  expect((await running.result()).status).toBe('active');
});

it('refuses a spec with both or neither of cron and interval, or a cron of the wrong shape, and creates nothing', async () => {
  const uuid = randomUUID();
  const backup = { backupType: 'daily', rotation: 1 };
  await expect(schedules.create({ uuid, projectId: null }, { cron: '0 3 * * *', intervalSeconds: 60 }, backup)).rejects.toThrow(/exactly one of cron and intervalSeconds/);
  await expect(schedules.create({ uuid, projectId: null }, {}, backup)).rejects.toThrow(/exactly one/);
  await expect(schedules.create({ uuid, projectId: null }, { cron: 'every day' }, backup)).rejects.toThrow(/cron/);
  expect(await schedules.describe(uuid)).toBeNull();
});
