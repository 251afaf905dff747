// The os-backup-schedule extension over real HTTP, on the real Temporal server with the stub cloud's
// workers: a bad spec, or a volume-backed server, is 400 and creates nothing; another project's
// server is 404 on every route, the snapshot service 403, the policy's admin rule 403 for members;
// a member's schedule is created, replaced, listed in its project only, paused, triggered (a real
// backup image), resumed and deleted; and the reconciler deletes the schedule of an instance once
// the instance is deleted.
import pino from 'pino';
import type { ScheduledBackupResult } from '../../../src/contract';
import { backupScheduleId, VOLUME_BACKED_BACKUP_REFUSAL } from '../../../src/contract';
import { SnapshotReconciler } from '../../../src/reconciler';
import { BackupSchedules } from '../../../src/temporal/backup-schedules';
import { call, eventually, type HttpAnswer } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';

let stack: ApiStack;
let schedules: BackupSchedules;
beforeAll(async () => {
  stack = await startApiStack();
  schedules = new BackupSchedules(stack.temporal);
});
afterAll(async () => {
  await stack?.stop();
});

const path = (uuid: string, tail = ''): string => `/v2.1/servers/${uuid}/os-backup-schedule${tail}`;
const nightly = (extra: Record<string, unknown> = {}) => ({ backup_schedule: { cron: '0 3 * * *', time_zone: 'Europe/Berlin', jitter_seconds: 1800, backup_type: 'daily', rotation: 7, ...extra } });
const put = (token: string, uuid: string, body: unknown): Promise<HttpAnswer> => call(stack.api.url, { method: 'PUT', path: path(uuid), token, body });
const action = (token: string, uuid: string, body: unknown): Promise<HttpAnswer> => call(stack.api.url, { method: 'POST', path: path(uuid, '/action'), token, body });

function fault(answer: HttpAnswer, name: string, code: number): string {
  expect({ status: answer.status, body: answer.json }).toMatchObject({ status: code });
  const body = answer.json as Record<string, { code: number; message: string }>;
  expect(Object.keys(body)).toEqual([name]);
  return body[name]?.message ?? '';
}

it('the OpenAPI document describes the extension', async () => {
  const doc = (await call(stack.api.url, { path: '/openapi.json' })).json as { paths: Record<string, Record<string, unknown>> };
  expect(Object.keys(doc.paths['/v2.1/servers/{server_id}/os-backup-schedule'] ?? {}).sort()).toEqual(['delete', 'get', 'put']);
  expect(Object.keys(doc.paths['/v2.1/servers/{server_id}/os-backup-schedule/action'] ?? {})).toEqual(['post']);
  expect(Object.keys(doc.paths['/v2.1/os-backup-schedules'] ?? {})).toEqual(['get']);
});

describe('a bad spec is refused and creates nothing', () => {
  let uuid: string;
  beforeAll(async () => {
    uuid = (await stack.addInstance()).uuid;
  });

  it.each([
    ['both cron and interval', nightly({ interval_seconds: 3600 }), /exactly one of cron and interval_seconds/],
    ['neither cron nor interval', { backup_schedule: { backup_type: 'daily', rotation: 1 } }, /exactly one of cron and interval_seconds/],
    ['a cron of the wrong shape', nightly({ cron: 'every day at 3' }), /five-field cron/],
    ['an unknown time zone', nightly({ time_zone: 'Mars/Olympus' }), /IANA time zone/],
    ['a negative jitter', nightly({ jitter_seconds: -1 }), /jitter_seconds/],
    ['a jitter over a day', nightly({ jitter_seconds: 86_401 }), /jitter_seconds/],
    ['an interval of 0', { backup_schedule: { interval_seconds: 0, backup_type: 'daily', rotation: 1 } }, /interval_seconds/],
    ['rotation 0 (keeps nothing)', nightly({ rotation: 0 }), /rotation/],
    ['rotation over 1000', nightly({ rotation: 1001 }), /rotation/],
    ['no backup_type', { backup_schedule: { cron: '@daily', rotation: 1 } }, /backup_type/],
    ['an empty backup_type', nightly({ backup_type: '' }), /backup_type/],
    ['an unknown field', nightly({ keep_weekly: 4 }), /keep_weekly|Unrecognized/],
    ['no wrapper', { cron: '@daily', backup_type: 'daily', rotation: 1 }, /Unrecognized|backup_schedule/],
  ])('%s: 400', async (_what, body, message) => {
    expect(fault(await put(TOKENS.demo, uuid, body), 'badRequest', 400)).toMatch(message);
    expect(await schedules.describe(uuid)).toBeNull();
  });

  it("a volume-backed server: createBackup's 400 (each run would be a backup Nova refuses), and no schedule", async () => {
    const inst = await stack.addInstance({ volumes: [{ volumeId: '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19', device: 'vda', root: true }] });
    expect(fault(await put(TOKENS.demo, inst.uuid, nightly()), 'badRequest', 400)).toBe(VOLUME_BACKED_BACKUP_REFUSAL);
    expect(await schedules.describe(inst.uuid)).toBeNull();
  });

  it("a schedule a volume-backed server already has (made before the refusal): trigger is 400 and starts nothing; the reconcile pass pauses it with Nova's refusal, once", async () => {
    const inst = await stack.addInstance({ volumes: [{ volumeId: '5e2f1a3b-8c7d-4e6f-a5b4-c3d2e1f0a9b8', device: 'vda', root: true }] });
    await schedules.create(inst, { cron: '0 3 * * *' }, { backupType: 'daily', rotation: 7 });
    try {
      expect(fault(await action(TOKENS.demo, inst.uuid, { trigger: null }), 'badRequest', 400)).toBe(VOLUME_BACKED_BACKUP_REFUSAL);
      const reconciler = new SnapshotReconciler({ client: stack.temporal, store: stack.store, images: stack.imageClient(), graceMs: 300_000, log: pino({ level: 'silent' }), schedules });
      // The listing is Temporal's visibility store: the schedule shows up in it a moment after it was made.
      await eventually(async () => ((await reconciler.runOnce()).pausedSchedules.includes(inst.uuid) ? true : undefined), 'the volume-backed schedule paused');
      const after = await schedules.describe(inst.uuid);
      expect(after).toMatchObject({ paused: true, note: VOLUME_BACKED_BACKUP_REFUSAL, recentRuns: [] });
      // The listing may still show it unpaused for a moment: a second pause is harmless, and then none.
      await eventually(async () => ((await reconciler.runOnce()).pausedSchedules.includes(inst.uuid) ? undefined : true), 'no second pause');
      expect((await action(TOKENS.demo, inst.uuid, { resume: null })).status).toBe(202);
    } finally {
      await schedules.delete(inst.uuid);
    }
  });

  it('an action body with no, two or an unknown action: 400', async () => {
    await put(TOKENS.demo, uuid, nightly());
    try {
      expect(fault(await action(TOKENS.demo, uuid, {}), 'badRequest', 400)).toBe('Malformed request body');
      expect(fault(await action(TOKENS.demo, uuid, { pause: null, trigger: null }), 'badRequest', 400)).toBe('Malformed message body: too many body keys');
      expect(fault(await action(TOKENS.demo, uuid, { reboot: null }), 'badRequest', 400)).toBe('There is no such action: reboot');
      expect((await schedules.describe(uuid))?.paused).toBe(false);
    } finally {
      await schedules.delete(uuid);
    }
  });
});

describe('project scope and policy', () => {
  it("another project's server is 404 on every route, and its schedule is not listed; the snapshot service is 403", async () => {
    const inst = await stack.addInstance();
    expect((await put(TOKENS.demo, inst.uuid, nightly())).status).toBe(201);
    try {
      for (const token of [TOKENS.other, TOKENS.otherAdmin]) {
        expect(fault(await call(stack.api.url, { path: path(inst.uuid), token }), 'itemNotFound', 404)).toBe(`Instance ${inst.uuid} could not be found.`);
        fault(await put(token, inst.uuid, nightly({ rotation: 1 })), 'itemNotFound', 404);
        fault(await action(token, inst.uuid, { pause: null }), 'itemNotFound', 404);
        fault(await call(stack.api.url, { method: 'DELETE', path: path(inst.uuid), token }), 'itemNotFound', 404);
      }
      fault(await call(stack.api.url, { path: path(inst.uuid), token: TOKENS.service }), 'forbidden', 403);
      fault(await call(stack.api.url, { path: path('not-a-uuid'), token: TOKENS.demo }), 'itemNotFound', 404);
      // Nothing the other project did changed it.
      expect(await schedules.describe(inst.uuid)).toMatchObject({ paused: false, backup: { rotation: 7 } });

      const ownList = await eventually(async () => {
        const answer = await call(stack.api.url, { path: '/v2.1/os-backup-schedules', token: TOKENS.demo });
        const listed = (answer.json as { backup_schedules: { server_id: string }[] }).backup_schedules;
        return listed.some((s) => s.server_id === inst.uuid) ? listed : undefined;
      }, 'the schedule in its project\'s listing');
      expect(ownList.every((s) => s.server_id !== '')).toBe(true);
      const otherList = await call(stack.api.url, { path: '/v2.1/os-backup-schedules', token: TOKENS.other });
      expect(otherList.status).toBe(200);
      expect((otherList.json as { backup_schedules: { server_id: string }[] }).backup_schedules.map((s) => s.server_id)).not.toContain(inst.uuid);
      fault(await call(stack.api.url, { path: '/v2.1/os-backup-schedules?all_tenants=1', token: TOKENS.demo }), 'forbidden', 403);
      const all = await call(stack.api.url, { path: '/v2.1/os-backup-schedules?all_tenants=1', token: TOKENS.admin });
      const adminView = (all.json as { backup_schedules: { server_id: string; temporal_ui_url: string | null }[] }).backup_schedules.find((s) => s.server_id === inst.uuid);
      expect(adminView?.temporal_ui_url).toMatch(new RegExp(`/namespaces/default/schedules/${backupScheduleId(inst.uuid)}$`));
    } finally {
      await schedules.delete(inst.uuid);
    }
  });

  it('with SNAP_POLICY_BACKUP_SCHEDULE=admin a member is refused (403 after the server is found), a cloud admin is not', async () => {
    const narrow = await startApiStack({ backupSchedulePolicy: 'admin', workers: false });
    try {
      const inst = await narrow.addInstance();
      const refused = await call(narrow.api.url, { method: 'PUT', path: path(inst.uuid), token: TOKENS.demo, body: nightly() });
      expect(fault(refused, 'forbidden', 403)).toBe("Policy doesn't allow os_compute_api:os-backup-schedule to be performed.");
      fault(await call(narrow.api.url, { path: '/v2.1/os-backup-schedules', token: TOKENS.demo }), 'forbidden', 403);
      fault(await call(narrow.api.url, { path: path(inst.uuid), token: TOKENS.other }), 'itemNotFound', 404);
      expect(await schedules.describe(inst.uuid)).toBeNull();
      const created = await call(narrow.api.url, { method: 'PUT', path: path(inst.uuid), token: TOKENS.admin, body: nightly() });
      expect(created.status).toBe(201);
      expect((await call(narrow.api.url, { method: 'DELETE', path: path(inst.uuid), token: TOKENS.admin })).status).toBe(204);
    } finally {
      await narrow.stop();
    }
  });
});

it('a member creates, replaces, shows, pauses, triggers (a real backup), resumes and deletes its server\'s schedule', async () => {
  const inst = await stack.addInstance();
  const created = await put(TOKENS.demo, inst.uuid, nightly());
  expect(created.status).toBe(201);
  expect((created.json as { backup_schedule: unknown }).backup_schedule).toMatchObject({
    id: backupScheduleId(inst.uuid),
    server_id: inst.uuid,
    project_id: 'demo',
    cron: '0 3 * * *',
    interval_seconds: null,
    time_zone: 'Europe/Berlin',
    jitter_seconds: 1800,
    backup_type: 'daily',
    rotation: 7,
    paused: false,
    catchup_window_seconds: 3600,
    temporal_ui_url: null,
  });
  try {
    expect((await action(TOKENS.demo, inst.uuid, { pause: { note: 'maintenance window' } })).status).toBe(202);
    expect(await schedules.describe(inst.uuid)).toMatchObject({ paused: true, note: 'maintenance window' });

    // Replaced while paused: the new spec, still paused with its note.
    const replaced = await put(TOKENS.demo, inst.uuid, { backup_schedule: { interval_seconds: 86_400, backup_type: 'weekly', rotation: 2 } });
    expect(replaced.status).toBe(200);
    const shown = await call(stack.api.url, { path: path(inst.uuid), token: TOKENS.demo });
    const view = (shown.json as { backup_schedule: { cron: string | null; interval_seconds: number; backup_type: string; next_runs: string[] } }).backup_schedule;
    expect(view).toMatchObject({ cron: null, interval_seconds: 86_400, backup_type: 'weekly', paused: true, note: 'maintenance window' });
    expect(view.next_runs.length).toBeGreaterThan(0);

    // Triggered while paused: one backup now, a real image of the schedule's type.
    expect((await action(TOKENS.demo, inst.uuid, { trigger: null })).status).toBe(202);
    const run = await eventually(async () => (await schedules.describe(inst.uuid))?.recentRuns[0], 'the triggered run');
    const result: ScheduledBackupResult = await stack.temporal.workflow.getHandle(run.workflowId).result();
    expect(result.started).toBe(true);
    const image = await stack.imageClient(TOKENS.demo).get(result.imageId ?? '');
    expect(image).toMatchObject({ status: 'active' });
    expect(image.properties).toMatchObject({ image_type: 'backup', backup_type: 'weekly', instance_uuid: inst.uuid });

    expect((await action(TOKENS.demo, inst.uuid, { resume: null })).status).toBe(202);
    expect((await schedules.describe(inst.uuid))?.paused).toBe(false);
  } finally {
    const deleted = await call(stack.api.url, { method: 'DELETE', path: path(inst.uuid), token: TOKENS.demo });
    expect(deleted.status).toBe(204);
  }
  expect(await schedules.describe(inst.uuid)).toBeNull();
  fault(await call(stack.api.url, { path: path(inst.uuid), token: TOKENS.demo }), 'itemNotFound', 404);
  expect(fault(await call(stack.api.url, { method: 'DELETE', path: path(inst.uuid), token: TOKENS.demo }), 'itemNotFound', 404)).toBe(`Instance ${inst.uuid} has no backup schedule.`);
  fault(await action(TOKENS.demo, inst.uuid, { trigger: null }), 'itemNotFound', 404);
});

it("deleting the instance removes its schedule at the next reconcile pass, idempotently, and leaves a live instance's alone", async () => {
  const [gone, live] = [await stack.addInstance(), await stack.addInstance()];
  for (const inst of [gone, live]) expect((await put(TOKENS.demo, inst.uuid, nightly())).status).toBe(201);
  try {
    await stack.store.markDeleted(gone.uuid);
    const reconciler = new SnapshotReconciler({ client: stack.temporal, store: stack.store, images: stack.imageClient(), graceMs: 300_000, log: pino({ level: 'silent' }), schedules });
    // The listing is Temporal's visibility store: the schedule shows up in it a moment after it was made.
    const first = await eventually(async () => {
      const report = await reconciler.runOnce();
      return report.deletedSchedules.includes(gone.uuid) ? report : undefined;
    }, 'the deleted instance\'s schedule swept');
    expect(first.deletedSchedules).not.toContain(live.uuid);
    expect(await schedules.describe(gone.uuid)).toBeNull();
    expect(await schedules.describe(live.uuid)).not.toBeNull();
    const again = await reconciler.runOnce();
    expect(again.deletedSchedules).not.toContain(gone.uuid);
    expect(await schedules.describe(live.uuid)).not.toBeNull();
  } finally {
    await schedules.delete(live.uuid);
    await schedules.delete(gone.uuid);
  }
});
