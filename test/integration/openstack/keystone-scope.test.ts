// Admin scope against a real Keystone (PyPI keystone under gunicorn), oslo.policy's secure
// defaults: an `admin` role in another project is that project's admin only (Nova's bug 968696
// made it cloud admin), a system-scoped admin is cloud admin, and the workers' service user (the
// `service` role only) validates tokens and writes snapshot images but is refused by the compute API.
import { Readable } from 'node:stream';
import { snapshotWorkflowId } from '../../../src/contract';
import { call, createImage } from '../../support/api-http';
import { startApiStack, type ApiStack } from '../../support/api-stack';
import { startKeystone, type KeystoneUser, type RunningKeystone } from '../../support/openstack/keystone';

jest.setTimeout(240_000);

let keystone: RunningKeystone;
let stack: ApiStack;
let demo: KeystoneUser;
let elsewhereAdmin: KeystoneUser;
let serviceToken: string;

beforeAll(async () => {
  keystone = await startKeystone();
  const service = await keystone.createUser('snapshots', 'service', ['service']);
  demo = await keystone.createUser('demo', 'demo', ['member']);
  elsewhereAdmin = await keystone.createUser('elsewhere-admin', 'elsewhere', ['admin', 'member']);
  const source = keystone.authenticatorFor(service, await keystone.projectId('admin'));
  serviceToken = await source.serviceToken();
  stack = await startApiStack({ identity: { source, serviceToken } });
});
afterAll(async () => {
  await stack?.stop();
  await keystone?.stop();
});

const ids = (answer: { json: unknown }): string[] => (answer.json as { servers: { id: string }[] }).servers.map((s) => s.id);

/** An active image of the demo project, uploaded with the demo user's token. */
async function demoImage(token: string): Promise<string> {
  const images = stack.imageClient(token);
  const image = await images.create({ name: 'demo-data', disk_format: 'raw', container_format: 'bare' });
  await images.upload(image.id, Readable.from([Buffer.from('the demo project\'s bytes')]));
  return image.id;
}

it("a project-scoped admin of another project cannot list, snapshot or download this project's things", async () => {
  const server = await stack.addInstance({ projectId: demo.projectId, userId: demo.userId });
  const imageId = await demoImage(await keystone.passwordToken(demo.username, demo.password, demo.project));
  const token = await keystone.passwordToken(elsewhereAdmin.username, elsewhereAdmin.password, elsewhereAdmin.project);

  expect(ids(await call(stack.api.url, { path: '/v2.1/servers', token }))).not.toContain(server.uuid);
  expect((await call(stack.api.url, { path: '/v2.1/servers?all_tenants=1', token })).status).toBe(403);
  expect((await call(stack.api.url, { path: `/v2.1/servers/${server.uuid}`, token })).status).toBe(404);
  expect((await createImage(stack.api.url, token, server.uuid, { name: 'steal' })).status).toBe(404);
  expect((await call(stack.api.url, { path: '/ops/hosts', token })).status).toBe(403);
  expect((await stack.store.getOrThrow(server.uuid)).taskState).toBeNull();

  const listed = await call(stack.images.url, { path: '/v2/images', token });
  expect(listed.status).toBe(200);
  expect((listed.json as { images: { id: string }[] }).images.map((i) => i.id)).not.toContain(imageId);
  expect((await call(stack.images.url, { path: `/v2/images/${imageId}`, token })).status).toBe(404);
  expect((await call(stack.images.url, { path: `/v2/images/${imageId}/file`, token })).status).toBe(404);
});

it('a system-scoped admin can: every project\'s servers, a snapshot of one (owned by its project), any image\'s data', async () => {
  const server = await stack.addInstance({ projectId: demo.projectId, userId: demo.userId });
  const imageId = await demoImage(await keystone.passwordToken(demo.username, demo.password, demo.project));
  const token = await keystone.systemToken('admin', keystone.adminPassword);

  expect(ids(await call(stack.api.url, { path: '/v2.1/servers?all_tenants=1', token }))).toContain(server.uuid);
  expect((await call(stack.api.url, { path: `/v2.1/servers/${server.uuid}`, token })).status).toBe(200);
  expect((await call(stack.api.url, { path: '/ops/hosts', token })).status).toBe(200);
  const accepted = await createImage(stack.api.url, token, server.uuid, { name: 'by-system-admin' }, { 'OpenStack-API-Version': 'compute 2.45' });
  expect(accepted.status).toBe(202);
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(server.uuid)).result();
  const snapshot = await call(stack.images.url, { path: `/v2/images/${(accepted.json as { image_id: string }).image_id}`, token });
  expect(snapshot.json).toMatchObject({ status: 'active', owner: demo.projectId });
  const data = await call(stack.images.url, { path: `/v2/images/${(accepted.json as { image_id: string }).image_id}/file`, token });
  expect(data.status).toBe(200);
  expect((await call(stack.images.url, { path: `/v2/images/${imageId}/file`, token })).text).toBe('the demo project\'s bytes');
});

it('an admin of the configured admin project is cloud admin; the service user is refused by the compute API', async () => {
  const admin = await keystone.passwordToken('admin', keystone.adminPassword, 'admin');
  expect((await call(stack.api.url, { path: '/ops/hosts', token: admin })).status).toBe(200);
  expect((await call(stack.api.url, { path: '/v2.1/servers', token: serviceToken })).status).toBe(403);
  expect((await call(stack.api.url, { path: '/ops/hosts', token: serviceToken })).status).toBe(403);
});
