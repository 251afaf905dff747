// An instance's backup schedule as the Temporal Web UI serves it, through the UI server's own HTTP
// API (what its pages call): the schedule's next runs; pause there, and the schedule is paused with
// the UI's note as our API reads it; trigger there, and a run starts and shows among its recent
// actions. The suite's shared dev server is headless, so this file starts one with the UI.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { backupScheduleId } from '../../../src/contract';
import { BackupSchedules } from '../../../src/temporal/backup-schedules';
import { startDevServer, type DevServer } from '../../../src/temporal/dev-server';
import { eventually } from '../../support/api-http';
import { freePort } from '../../support/free-port';

let dir: string;
let server: DevServer;
let connection: Connection;
let schedules: BackupSchedules;
let ui: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'schedule-ui-'));
  server = await startDevServer({ port: await freePort(), uiPort: await freePort(), dbFile: join(dir, 'temporal.db') });
  ui = server.uiUrl ?? '';
  connection = await Connection.connect({ address: server.address });
  schedules = new BackupSchedules(new Client({ connection }));
  // The UI server comes up a moment after the frontend.
  await eventually(async () => ((await fetch(`${ui}/api/v1/settings`).catch(() => undefined))?.ok === true ? true : undefined), 'the Temporal UI server', 30_000);
}, 90_000);
afterAll(async () => {
  await connection?.close();
  await server?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** The UI's schedule route; its POSTs need the CSRF cookie it hands out echoed in X-CSRF-Token, as its pages do. */
class UiSession {
  private csrf = '';
  constructor(private readonly base: string) {}

  async get(path: string): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${this.base}${path}`);
    this.remember(res);
    const text = await res.text();
    return { status: res.status, json: res.ok ? (JSON.parse(text) as unknown) : text };
  }

  async post(path: string, body: unknown): Promise<number> {
    const res = await fetch(`${this.base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: `_csrf=${this.csrf}`, 'X-CSRF-Token': this.csrf }, body: JSON.stringify(body) });
    this.remember(res);
    await res.text();
    return res.status;
  }

  private remember(res: Response): void {
    const cookie = /_csrf=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
    if (cookie !== undefined) this.csrf = cookie;
  }
}

interface UiSchedule {
  schedule: { state: { paused?: boolean; notes?: string } };
  info: { futureActionTimes?: string[]; recentActions?: { startWorkflowResult?: { workflowId?: string } }[] };
}

it('shows the next runs; pause and trigger in the UI take effect', async () => {
  const uuid = randomUUID();
  const path = `/api/v1/namespaces/default/schedules/${backupScheduleId(uuid)}`;
  const session = new UiSession(ui);
  await schedules.create({ uuid, projectId: 'demo' }, { cron: '0 3 * * *', timeZone: 'Europe/Berlin' }, { backupType: 'daily', rotation: 7 });
  try {
    // A fresh dev server answers a schedule's describe with 503 until its per-namespace scheduler
    // worker is up (seconds, longer on a loaded machine); the UI passes that through.
    const shown = await eventually(async () => {
      const answer = await session.get(path);
      return answer.status === 503 ? undefined : answer;
    }, 'the UI describing the schedule', 60_000);
    expect(shown.status).toBe(200);
    const next = (shown.json as UiSchedule).info.futureActionTimes ?? [];
    expect(next.length).toBeGreaterThan(0);
    expect(next).toEqual((await schedules.describe(uuid))?.nextRuns.map((t) => t.replace('.000Z', 'Z')));

    // Without the CSRF token the UI refuses, and nothing changes.
    const forged = await fetch(`${ui}${path}/patch`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ patch: { pause: 'forged' } }) });
    expect(forged.status).toBe(400);
    expect((await schedules.describe(uuid))?.paused).toBe(false);

    expect(await session.post(`${path}/patch`, { patch: { pause: 'paused from the UI' } })).toBe(200);
    expect(await schedules.describe(uuid)).toMatchObject({ paused: true, note: 'paused from the UI' });
    expect(((await session.get(path)).json as UiSchedule).schedule.state).toMatchObject({ paused: true, notes: 'paused from the UI' });

    expect(await session.post(`${path}/patch`, { patch: { triggerImmediately: { overlapPolicy: 'SCHEDULE_OVERLAP_POLICY_SKIP' } } })).toBe(200);
    const run = await eventually(async () => (await schedules.describe(uuid))?.recentRuns[0], 'the run the UI triggered', 30_000);
    expect(run.workflowId).toMatch(new RegExp(`^scheduled-${backupScheduleId(uuid)}`));
    const started = await new Client({ connection }).workflow.getHandle(run.workflowId).describe();
    expect(started.type).toBe('scheduledBackup');
    const actions = await eventually(async () => {
      const recent = ((await session.get(path)).json as UiSchedule).info.recentActions ?? [];
      return recent.length > 0 ? recent : undefined;
    }, 'the UI showing the recent action');
    expect(actions[0]?.startWorkflowResult?.workflowId).toBe(run.workflowId);
    // No worker here: the run waits for one; it is not left behind.
    await new Client({ connection }).workflow.getHandle(run.workflowId).terminate('test over');
  } finally {
    await schedules.delete(uuid);
  }
});
