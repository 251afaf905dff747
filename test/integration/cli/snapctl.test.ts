// snapctl through its built binary against the real stack: snapshot --wait to an active image whose
// bytes match the disk, listings, ops as admin, and one exit code per error class.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { snapshotWorkflowId, VOLUME_BACKED_BACKUP_REFUSAL } from '../../../src/contract';
import { memberFailureText } from '../../../src/api/member-failure';
import { call, eventually } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { buildSnapctl, type BuiltSnapctl, type SnapctlResult } from '../../support/api-snapctl';
import { diskBytesFor } from '../../support/api-stub-activities';

let stack: ApiStack;
let snapctl: BuiltSnapctl;
beforeAll(async () => {
  [stack, snapctl] = await Promise.all([startApiStack(), buildSnapctl()]);
});
afterAll(async () => {
  await stack?.stop();
  await snapctl?.cleanup();
});

function as(token: string | undefined, args: string[], extra: Record<string, string> = {}): Promise<SnapctlResult> {
  const env: Record<string, string> = { SNAP_API_URL: stack.api.url, SNAP_IMAGE_URL: stack.images.url, ...extra };
  if (token !== undefined) env.SNAP_TOKEN = token;
  return snapctl.run(args, env);
}

describe('snapctl', () => {
  it('snapshot --wait by server name shows progress, ends with an active image whose bytes match; download verifies them', async () => {
    const inst = await stack.addInstance();
    const result = await as(TOKENS.demo, ['snapshot', inst.name, '--name', 's1', '--metadata', 'purpose=cli', '--wait']);
    expect(result.stderr).toMatch(/\[#*-*\] (upload|done)/);
    expect(result.code).toBe(0);
    const imageId = /image ([0-9a-f-]{36})/.exec(result.stdout)?.[1] ?? '';
    expect(result.stdout).toContain(`Snapshot of ${inst.uuid} is active: image ${imageId}`);
    const image = await stack.imageClient(TOKENS.demo).get(imageId);
    expect(image).toMatchObject({ status: 'active', name: 's1' });
    expect(image.properties.purpose).toBe('cli');

    const file = join(stack.dir, 'downloaded.raw');
    const download = await as(TOKENS.demo, ['download', imageId, file]);
    expect(download.code).toBe(0);
    expect((await readFile(file)).equals(diskBytesFor(inst.uuid))).toBe(true);

    const images = await as(TOKENS.demo, ['images']);
    expect(images.stdout).toContain(imageId);
    const shown = await as(TOKENS.demo, ['image', imageId, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ image: { id: imageId, status: 'active' } });
  });

  it('servers lists the token\'s project only; show prints the OS-EXT fields', async () => {
    const mine = await stack.addInstance({ projectId: 'demo' });
    const theirs = await stack.addInstance({ projectId: 'other' });
    const servers = await as(TOKENS.demo, ['servers']);
    expect(servers.code).toBe(0);
    expect(servers.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+TASK_STATE/);
    expect(servers.stdout).toContain(mine.uuid);
    expect(servers.stdout).not.toContain(theirs.uuid);
    const show = await as(TOKENS.demo, ['show', mine.uuid]);
    expect(show.stdout).toMatch(/OS-EXT-STS:vm_state\s+active/);
  });

  it('a failed snapshot --wait exits 8; snapshots --failed lists it; retry makes it active', async () => {
    const inst = await stack.addInstance();
    stack.cloud.failUploads(inst.uuid, 1);
    const failed = await as(TOKENS.demo, ['snapshot', inst.uuid, '--name', 'doomed', '--wait']);
    expect(failed.code).toBe(8);
    // The owner (a member) reads the failure's type and a fixed sentence; its text is for admins.
    expect(failed.stderr).toContain(`failed: ${memberFailureText('InjectedFailure')}`);
    expect(failed.stderr).not.toContain('injected upload failure');

    const workflowId = snapshotWorkflowId(inst.uuid);
    const forAdmin = await call(stack.api.url, { path: `/ops/snapshots/${workflowId}`, token: TOKENS.admin });
    expect((forAdmin.json as { snapshot: { error: string } }).snapshot.error).toContain('injected upload failure');
    await eventually(async () => {
      const listed = await as(TOKENS.admin, ['snapshots', '--failed']);
      return listed.code === 0 && listed.stdout.includes(workflowId) ? listed : undefined;
    }, 'snapctl snapshots --failed to list the run');

    const retry = await as(TOKENS.admin, ['retry', workflowId]);
    expect(retry.code).toBe(0);
    const runId = /run ([0-9a-f-]{36})/.exec(retry.stdout)?.[1] ?? '';
    expect(retry.stdout).toContain(`/workflows/${workflowId}/${runId}`);
    const result = await stack.temporal.workflow.getHandle(workflowId, runId).result();
    expect((await stack.imageClient().get(result.imageId)).status).toBe('active');

    const hosts = await as(TOKENS.admin, ['hosts']);
    expect(hosts.stdout).toContain(stack.host);
  });

  it('schedule create|list|show|pause|resume|trigger|delete round trip, by server name, with exit codes for bad input and another project', async () => {
    const inst = await stack.addInstance();
    const created = await as(TOKENS.demo, ['schedule', 'create', inst.name, '--cron', '0 3 * * *', '--time-zone', 'Europe/Berlin', '--jitter', '30m', '--type', 'daily', '--keep', '7']);
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
    expect(created.stdout).toContain(`Backup schedule backup-${inst.uuid} created`);
    expect(created.stdout).toMatch(/when\s+cron 0 3 \* \* \* \(Europe\/Berlin\)/);
    try {
      const listed = await eventually(async () => {
        const result = await as(TOKENS.demo, ['schedule', 'list', '--json']);
        const json = JSON.parse(result.stdout) as { backup_schedules: { server_id: string; rotation: number }[] };
        return json.backup_schedules.find((s) => s.server_id === inst.uuid);
      }, 'the schedule in snapctl schedule list');
      expect(listed.rotation).toBe(7);
      expect((await as(TOKENS.demo, ['schedule', 'pause', inst.uuid, '--note', 'upgrade'])).code).toBe(0);
      const shown = await as(TOKENS.demo, ['schedule', 'show', inst.name]);
      expect(shown.stdout).toMatch(/paused\s+yes \(upgrade\)/);
      expect((await as(TOKENS.demo, ['schedule', 'resume', inst.uuid])).code).toBe(0);
      expect((await as(TOKENS.demo, ['schedule', 'show', inst.uuid])).stdout).toMatch(/paused\s+no/);
      const triggered = await as(TOKENS.demo, ['schedule', 'trigger', inst.uuid]);
      expect(triggered.stdout).toContain('triggered');
      const run = await eventually(async () => {
        const json = JSON.parse((await as(TOKENS.demo, ['schedule', 'show', inst.uuid, '--json'])).stdout) as { backup_schedule: { recent_runs: { workflow_id: string }[] } };
        return json.backup_schedule.recent_runs[0];
      }, 'the triggered run');
      await stack.temporal.workflow.getHandle(run.workflow_id).result();

      expect((await as(TOKENS.other, ['schedule', 'show', inst.uuid])).code).toBe(4);
      expect((await as(TOKENS.demo, ['schedule', 'create', inst.uuid, '--cron', 'nightly', '--type', 'daily', '--keep', '7'])).code).toBe(2);
      expect((await as(TOKENS.demo, ['schedule', 'create', inst.uuid, '--interval', '1h', '--type', 'daily'])).code).toBe(2);
      expect((await as(TOKENS.demo, ['schedule', 'frob', inst.uuid])).code).toBe(2);
    } finally {
      const deleted = await as(TOKENS.demo, ['schedule', 'delete', inst.uuid]);
      expect(deleted.stdout).toContain('deleted');
    }
    expect((await as(TOKENS.demo, ['schedule', 'show', inst.uuid])).code).toBe(4);
  });

  it("schedule create for a volume-backed server prints Nova's refusal and exits 2", async () => {
    const inst = await stack.addInstance({ volumes: [{ volumeId: '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19', device: 'vda', root: true }] });
    const refused = await as(TOKENS.demo, ['schedule', 'create', inst.name, '--cron', '@daily', '--type', 'daily', '--keep', '7']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${VOLUME_BACKED_BACKUP_REFUSAL} (HTTP 400)`);
    expect((await as(TOKENS.demo, ['schedule', 'show', inst.uuid])).code).toBe(4);
  });

  it('exits with one code per error class', async () => {
    const inst = await stack.addInstance();
    const cases: [string, Promise<SnapctlResult>, number][] = [
      ['usage: unknown command', as(TOKENS.demo, ['frobnicate']), 2],
      ['usage: missing --name', as(TOKENS.demo, ['snapshot', inst.uuid]), 2],
      ['usage: bad metadata', as(TOKENS.demo, ['snapshot', inst.uuid, '--name', 'x', '--metadata', 'novalue']), 2],
      ['invalid request (400)', as(TOKENS.demo, ['snapshot', inst.uuid, '--name', 'x'.repeat(300)]), 2],
      ['auth: no token', as(undefined, ['servers']), 3],
      ['auth: unknown token', as('unknown-token-0123456789', ['servers']), 3],
      ['auth: member on ops', as(TOKENS.demo, ['hosts']), 3],
      ['not found: server', as(TOKENS.demo, ['show', '7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a0f']), 4],
      ['not found: other project', as(TOKENS.other, ['show', inst.uuid]), 4],
      ['not found: image', as(TOKENS.demo, ['image', '7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a0f']), 4],
      ['network', as(TOKENS.demo, ['servers'], { SNAP_API_URL: 'http://127.0.0.1:9' }), 7],
    ];
    for (const [what, pending, code] of cases) {
      const result = await pending;
      expect({ what, code: result.code }).toEqual({ what, code });
      expect(result.stderr).toMatch(/^snapctl: \S/);
    }
    await stack.store.setTaskStateOrThrow(inst.uuid, [null], 'image_snapshot');
    const busy = await as(TOKENS.demo, ['snapshot', inst.uuid, '--name', 'busy']);
    expect(busy.code).toBe(5);
    expect(busy.stderr).toContain(`Cannot 'createImage' instance ${inst.uuid} while it is in task_state image_snapshot`);
  });
});
