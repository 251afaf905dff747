// A backup schedule at a short interval on a real writing guest (issue 26 §2), through a control
// worker killed -9 in the middle of a scheduled backup (held just after its first control steps,
// the image created and task_state claimed) and a Temporal server killed and restarted on its
// database in the middle of another (held at the upload, down longer than the interval). Then,
// from the schedule's own counts, Temporal's visibility and the image service: every tick was
// either taken or skipped by the overlap policy, none missed; every action taken made exactly one
// snapshot run and one image or skipped itself; no image twice; after Nova's rotation (3) and the
// schedule's retention (keep-last 2) the instance keeps exactly the newest two backups of the type,
// each downloading whole as a clean filesystem; no
// workflow left open; the guest running, nothing left behind.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { backupScheduleId, POWER_STATE_RUNNING, snapshotWorkflowId, type ScheduledBackupResult } from '../../../src/contract';
import { BackupSchedules } from '../../../src/temporal/backup-schedules';
import { ImageIdKey } from '../../../src/temporal/search-attributes';
import { eventually } from '../../support/api-http';
import { checkEndState } from '../../support/fault-checks';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';
import { killWhileHeld, release } from '../../support/fault-wait';
import { createRealGuest, fsyncedNow, guestOf, verifyGuestImage } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';
import { waitForFile } from '../../support/wait-for-file';

const INTERVAL_S = 6;
/** Nova's rotation keeps three; the schedule's retention (PBS's keep-last) then keeps two. */
const ROTATION = 3;
const KEEP_LAST = 2;
const BACKUP_TYPE = 'sched';
const PROJECT = 'p-sched';

// Four services, a real guest and one worker and one server restart on two cores.
jest.setTimeout(10 * 60_000);

let stack: FaultStack | undefined;
let fixture: InstanceFixture | undefined;
afterAll(async () => {
  await fixture?.cleanup().catch((err: unknown) => process.stderr.write(`guest cleanup: ${String(err)}\n`));
  await stack?.stop();
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ScheduledRun {
  workflowId: string;
  startedAt: Date;
  status: string;
  result?: ScheduledBackupResult;
}

/** Every run the schedule started, oldest first, with its result once closed. */
async function scheduledRuns(client: Client, scheduleId: string): Promise<ScheduledRun[]> {
  const runs: ScheduledRun[] = [];
  for await (const wf of client.workflow.list({ query: `TemporalScheduledById = '${scheduleId}'` })) {
    const run: ScheduledRun = { workflowId: wf.workflowId, startedAt: wf.startTime, status: wf.status.name };
    if (run.status === 'COMPLETED') run.result = (await client.workflow.getHandle(wf.workflowId, wf.runId).result()) as ScheduledBackupResult;
    runs.push(run);
  }
  return runs.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
}

const madeBackups = (runs: readonly ScheduledRun[]) => runs.filter((r) => r.result?.started === true).length;

/** Holds the next scheduled backup at `barrier`, and resolves once one is held there. */
async function holdNextAt(s: FaultStack, barrier: string): Promise<string> {
  const hold = join(s.barrierDir, `${barrier}.hold`);
  await rm(join(s.barrierDir, `${barrier}.reached`), { force: true });
  await writeFile(hold, '');
  await waitForFile(join(s.barrierDir, `${barrier}.reached`), 180_000);
  return hold;
}

it('loses no scheduled run and runs none twice through a control worker kill -9 and a Temporal restart, and rotation then retention keep exactly the newest two', async () => {
  const t0 = Date.now();
  stack = await startFaultStack();
  const s = stack;
  fixture = await createRealGuest({ prefix: 'snapsched', linux: { workload: 'log', rateKiB: 256 } });
  const instance = await s.register(fixture, POWER_STATE_RUNNING, PROJECT);
  const scheduleId = backupScheduleId(instance.uuid);
  const schedules = new BackupSchedules(s.client, { catchupWindowSeconds: 120 });
  const fsyncedBefore = await fsyncedNow(fixture);
  const setupMs = Date.now() - t0;

  const createdAt = Date.now();
  await schedules.create({ uuid: instance.uuid, projectId: PROJECT }, { intervalSeconds: INTERVAL_S, jitterSeconds: 0 }, { backupType: BACKUP_TYPE, rotation: ROTATION, retention: { keepLast: KEEP_LAST } });
  let pausedAt = createdAt;
  try {
    const backupsAtLeast = (n: number, what: string) =>
      eventually(async () => (madeBackups(await scheduledRuns(s.client, scheduleId)) >= n ? true : undefined), what, 180_000);
    await backupsAtLeast(1, 'a first scheduled backup');

    // kill -9 of the control worker with a scheduled backup just past its image and task_state
    // (local activities of one workflow task: the new worker runs that task again).
    const controlHold = await holdNextAt(s, 'task_state_image_backup');
    const beforeKill = madeBackups(await scheduledRuns(s.client, scheduleId));
    await killWhileHeld(s.controlWorker, controlHold);
    await backupsAtLeast(beforeKill + 1, 'the backup the control worker kill cut into');

    // The Temporal server killed with a backup uploading, down for more than one interval.
    const uploadHold = await holdNextAt(s, 'upload');
    const beforeRestart = madeBackups(await scheduledRuns(s.client, scheduleId));
    await s.killTemporal();
    await sleep(2 * INTERVAL_S * 1000);
    await s.startTemporal();
    await release(uploadHold);
    await backupsAtLeast(beforeRestart + 1, 'the backup the Temporal restart cut into');
    // One more on the far side of both faults.
    await backupsAtLeast(beforeRestart + 2, 'a backup after the faults');

    await schedules.pause(instance.uuid, 'test over');
    pausedAt = Date.now();
    await eventually(async () => ((await scheduledRuns(s.client, scheduleId)).every((r) => r.status !== 'RUNNING') ? true : undefined), 'the last scheduled run to close', 180_000);

    // Every tick between create and pause taken or skipped by the overlap policy, none missed.
    const { info } = await s.client.schedule.getHandle(scheduleId).describe();
    const ticks = Math.floor(pausedAt / (INTERVAL_S * 1000)) - Math.floor(createdAt / (INTERVAL_S * 1000));
    expect(info.numActionsMissedCatchupWindow).toBe(0);
    expect(Math.abs(info.numActionsTaken + info.numActionsSkippedOverlap - ticks)).toBeLessThanOrEqual(1);

    // Each action taken closed: one snapshot run and one image, or skipped as a snapshot was running.
    const runs = await scheduledRuns(s.client, scheduleId);
    expect(runs.length).toBe(info.numActionsTaken);
    expect(runs.filter((r) => r.status !== 'COMPLETED')).toEqual([]);
    for (const r of runs) if (r.result?.started === false) expect(r.result.skippedReason).toBe('a snapshot of the instance is in progress');
    const made = runs.flatMap((r) => (r.result?.started === true && r.result.imageId !== undefined ? [r.result.imageId] : []));
    expect(new Set(made).size).toBe(made.length);
    expect(made.length).toBe(madeBackups(runs));

    const snapshotRuns: { status: string; imageId: string | undefined }[] = [];
    for await (const wf of s.client.workflow.list({ query: `WorkflowId = '${snapshotWorkflowId(instance.uuid)}'` })) {
      snapshotRuns.push({ status: wf.status.name, imageId: wf.typedSearchAttributes.get(ImageIdKey) });
    }
    expect(snapshotRuns.map((r) => r.status)).toEqual(made.map(() => 'COMPLETED'));
    expect(snapshotRuns.map((r) => r.imageId).sort()).toEqual([...made].sort());

    // Nova's rotation, then the retention after it: the newest KEEP_LAST backups of the type kept, every older one gone.
    const kept = made.slice(-KEEP_LAST);
    const backups = (await s.images.list()).filter((i) => i.properties.instance_uuid === instance.uuid && i.properties.backup_type === BACKUP_TYPE);
    // (a second image of one run would show here, left queued)
    expect(backups.map((i) => ({ id: i.id, status: i.status })).sort((a, b) => a.id.localeCompare(b.id))).toEqual([...kept].sort().map((id) => ({ id, status: 'active' })));
    const newest = kept[kept.length - 1];
    if (newest === undefined) throw new Error('no backup made');
    // The guest running with no block job or save left, task_state None, every image active, no temp file, no open run.
    expect(await checkEndState(s, fixture, { imageId: newest, workflowId: snapshotWorkflowId(instance.uuid), completed: true, priorPowerState: POWER_STATE_RUNNING, instanceDeleted: false, fsyncedBefore })).toEqual([]);
    for (const id of kept.slice(0, -1)) {
      const contents = await verifyGuestImage(s.images, id, guestOf(fixture), fsyncedBefore);
      expect({ id, fsckClean: contents.fsckClean, digest: contents.logicalDigest?.downloaded }).toEqual({ id, fsckClean: true, digest: contents.logicalDigest?.stored });
    }
    process.stdout.write(
      `backup schedule every ${INTERVAL_S} s through a control worker kill -9 and a Temporal restart: ${ticks} ticks, ${info.numActionsTaken} taken ` +
        `(${made.length} backups, ${runs.length - made.length} skipped by the workflow), ${info.numActionsSkippedOverlap} skipped by overlap, ` +
        `${backups.length} kept; setup ${(setupMs / 1000).toFixed(1)} s, schedule ${((pausedAt - createdAt) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    await schedules.delete(instance.uuid).catch(() => undefined);
  }
});
