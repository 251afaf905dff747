// os-instance-actions as Nova records them: every createImage request is an action with its request
// id and project, its compute_snapshot_instance event ends Success or Error (the error text for
// admins only), failed attempts and ops retries included; and every view validates against
// Tempest's own response schemas at each microversion.
import { snapshotWorkflowId } from '../../../src/contract';
import { call, createImage } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { tempestRefusals, type SchemaCase } from '../../support/tempest-schemas';

let stack: ApiStack;
beforeAll(async () => {
  stack = await startApiStack();
});
afterAll(async () => {
  await stack?.stop();
});

type Action = { action: string; request_id: string; message: string | null; project_id: string; instance_uuid: string };
type Event = { event: string; result: string | null; finish_time: string | null; traceback?: string | null; host?: string; hostId?: string };

const at = (version: string) => ({ 'OpenStack-API-Version': `compute ${version}` });

async function settle(uuid: string): Promise<void> {
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(uuid)).result().catch(() => undefined);
}

it('records each createImage with its request id; the event ends Success, or Error with the reason for admins; ops retries are actions too', async () => {
  const inst = await stack.addInstance();
  const ok = await createImage(stack.api.url, TOKENS.demo, inst.uuid, { name: 'good' });
  expect(ok.status).toBe(202);
  await settle(inst.uuid);
  stack.cloud.failUploads(inst.uuid, 1);
  const bad = await createImage(stack.api.url, TOKENS.demo, inst.uuid, { name: 'bad' });
  expect(bad.status).toBe(202);
  await settle(inst.uuid);
  const retry = await call(stack.api.url, { method: 'POST', path: `/ops/snapshots/${snapshotWorkflowId(inst.uuid)}/retry`, token: TOKENS.admin });
  expect(retry.status).toBe(202);
  await settle(inst.uuid);

  const list = await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions`, token: TOKENS.demo });
  expect(list.status).toBe(200);
  const actions = (list.json as { instanceActions: Action[] }).instanceActions;
  expect(actions.map((a) => a.request_id)).toEqual([retry.headers['x-compute-request-id'], bad.headers['x-compute-request-id'], ok.headers['x-compute-request-id']]);
  expect(actions.map((a) => [a.action, a.message, a.project_id])).toEqual([['createImage', null, 'admin'], ['createImage', 'Error', 'demo'], ['createImage', null, 'demo']]);

  const show = async (requestId: unknown, token: string, version = '2.96') =>
    ((await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions/${String(requestId)}`, token, headers: at(version) })).json as { instanceAction: Action & { events?: Event[] } }).instanceAction;
  const good = await show(ok.headers['x-compute-request-id'], TOKENS.demo);
  expect(good.events).toEqual([expect.objectContaining({ event: 'compute_snapshot_instance', result: 'Success', finish_time: expect.any(String) })]);
  expect(good.events?.[0]).not.toHaveProperty('traceback');
  expect(good.events?.[0]).not.toHaveProperty('host');
  const failedForAdmin = await show(bad.headers['x-compute-request-id'], TOKENS.admin);
  expect(failedForAdmin.events?.[0]).toMatchObject({ event: 'compute_snapshot_instance', result: 'Error', host: stack.host, traceback: expect.stringContaining('injected upload failure') });
  expect((await show(bad.headers['x-compute-request-id'], TOKENS.demo, '2.50')).events).toBeUndefined();

  expect((await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions`, token: TOKENS.other })).status).toBe(404);
  const unknown = await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions/req-nope`, token: TOKENS.demo });
  expect(unknown.status).toBe(404);

  const cases: SchemaCase[] = [];
  for (let minor = 1; minor <= 96; minor += 1) {
    const version = `2.${minor}`;
    for (const token of [TOKENS.demo, TOKENS.admin]) {
      const l = await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions`, token, headers: at(version) });
      cases.push({ version, schema: 'servers.list_instance_actions', status: l.status, body: l.json });
      for (const answer of [ok, bad, retry]) {
        const s = await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions/${String(answer.headers['x-compute-request-id'])}`, token, headers: at(version) });
        cases.push({ version, schema: 'servers.show_instance_action', status: s.status, body: s.json });
      }
    }
  }
  const refused = await tempestRefusals(cases);
  expect(refused.map((r) => `${r.case.schema} at ${r.case.version}: ${r.error.split('\n').slice(0, 3).join(' ')}`)).toEqual([]);
});

it('a refused createImage leaves no action behind', async () => {
  const inst = await stack.addInstance();
  await stack.store.setTaskStateOrThrow(inst.uuid, [null], 'image_uploading');
  expect((await createImage(stack.api.url, TOKENS.demo, inst.uuid, { name: 'busy' })).status).toBe(409);
  const list = await call(stack.api.url, { path: `/v2.1/servers/${inst.uuid}/os-instance-actions`, token: TOKENS.demo });
  expect((list.json as { instanceActions: unknown[] }).instanceActions).toEqual([]);
});
