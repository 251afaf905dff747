// The stack behind a real Keystone (PyPI keystone under gunicorn), driven by the real
// python-openstackclient the way an operator drives Nova and Glance: password logins from a
// clouds.yaml, the catalog leading to the compute API and the image backend, Keystone tokens
// validated by both, and the workers uploading as the Keystone service user. Run twice: with the
// embedded image service, and with a real Glance (PyPI glance, file store, keystonemiddleware).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { snapshotWorkflowId } from '../../../src/contract';
import { call } from '../../support/api-http';
import { startApiStack, type ApiStack } from '../../support/api-stack';
import { diskBytesFor } from '../../support/api-stub-activities';
import { startGlance, type RunningGlance } from '../../support/openstack/glance';
import { startKeystone, type KeystoneUser, type RunningKeystone } from '../../support/openstack/keystone';
import { openstack, openstackOk, writeCloudsYaml } from '../../support/openstack/openstack-cli';

jest.setTimeout(240_000);

describe.each(['embedded', 'glance'] as const)('with the %s image backend', (backend) => {
let keystone: RunningKeystone;
let glance: RunningGlance | undefined;
let stack: ApiStack;
let demo: KeystoneUser;
let other: KeystoneUser;
let dir: string;
let clouds: string;

beforeAll(async () => {
  keystone = await startKeystone();
  const service = await keystone.createUser('snapshots', 'service', ['admin', 'service']);
  demo = await keystone.createUser('demo', 'demo', ['member']);
  other = await keystone.createUser('other', 'other', ['member']);
  // Admins of the `admin` project are cloud admins (SNAP_KEYSTONE_ADMIN_PROJECT), as Nova's context_is_admin made them.
  const source = keystone.authenticatorFor(service, await keystone.projectId('admin'));
  if (backend === 'glance') glance = await startGlance(keystone);
  stack = await startApiStack({ identity: { source, serviceToken: await source.serviceToken() }, imageBackendUrl: glance?.url });
  await keystone.registerEndpoint('compute', 'nova', `${stack.api.url}/v2.1`);
  await keystone.registerEndpoint('image', 'glance', stack.images.url);
  dir = await mkdtemp(join(tmpdir(), 'osc-'));
  clouds = await writeCloudsYaml(dir, {
    demo: { authUrl: keystone.url, username: demo.username, password: demo.password, project: demo.project },
    admin: { authUrl: keystone.url, username: 'admin', password: keystone.adminPassword, project: 'admin' },
  });
});
afterAll(async () => {
  await stack?.stop();
  await glance?.stop();
  await keystone?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function cli(cloud: string, args: string[]): Promise<unknown> {
  return openstackOk(clouds, cloud, args, { cwd: dir });
}

it('accepts Keystone tokens with project scope and admin from the role; refuses forged ones', async () => {
  const mine = await stack.addInstance({ projectId: demo.projectId, userId: demo.userId });
  const theirs = await stack.addInstance({ projectId: other.projectId });
  const token = await keystone.passwordToken(demo.username, demo.password, demo.project);
  const list = await call(stack.api.url, { path: '/v2.1/servers', token });
  expect(list.status).toBe(200);
  const ids = (list.json as { servers: { id: string }[] }).servers.map((s) => s.id);
  expect(ids).toContain(mine.uuid);
  expect(ids).not.toContain(theirs.uuid);
  expect((await call(stack.api.url, { path: '/ops/hosts', token })).status).toBe(403);
  const adminToken = await keystone.passwordToken('admin', keystone.adminPassword, 'admin');
  expect((await call(stack.api.url, { path: '/ops/hosts', token: adminToken })).status).toBe(200);
  expect((await call(stack.api.url, { path: '/v2.1/servers', token: 'gAAAAAforged-token' })).status).toBe(401);
  expect((await call(stack.images.url, { path: '/v2/images', token })).status).toBe(200);
  expect((await call(stack.images.url, { path: '/v2/images', token: 'gAAAAAforged-token' })).status).toBe(401);
});

it('openstack server list / show / image create --wait / server event list, show / image list, show, save, delete', async () => {
  const inst = await stack.addInstance({ projectId: demo.projectId, userId: demo.userId, flavor: { name: 'm1.small', vcpus: 1, memoryMiB: 2048, diskGiB: 20, swapMiB: 0, ephemeralGiB: 0 } });
  const servers = (await cli('demo', ['server', 'list', '-f', 'json'])) as { ID: string; Name: string; Status: string }[];
  expect(servers).toEqual(expect.arrayContaining([expect.objectContaining({ ID: inst.uuid, Status: 'ACTIVE' })]));
  const shown = (await cli('demo', ['server', 'show', inst.uuid, '-f', 'json'])) as Record<string, unknown>;
  expect(shown).toMatchObject({ id: inst.uuid, status: 'ACTIVE', user_id: demo.userId, project_id: demo.projectId });

  const created = (await cli('demo', ['server', 'image', 'create', '--name', 'osc-snap', '--wait', inst.uuid, '-f', 'json'])) as Record<string, unknown>;
  expect(created).toMatchObject({ name: 'osc-snap', status: 'active' });
  const imageId = String(created.id);
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();

  const events = (await cli('demo', ['server', 'event', 'list', inst.uuid, '-f', 'json'])) as { 'Request ID': string; Action: string }[];
  expect(events).toEqual([expect.objectContaining({ Action: 'createImage', 'Request ID': expect.stringMatching(/^req-/) })]);
  const event = (await cli('demo', ['server', 'event', 'show', inst.uuid, events[0]?.['Request ID'] ?? '', '-f', 'json'])) as Record<string, unknown>;
  expect(event).toMatchObject({ action: 'createImage', project_id: demo.projectId, user_id: demo.userId });
  expect(JSON.stringify(event.events)).toMatch(/compute_snapshot_instance.*Success|Success.*compute_snapshot_instance/);

  const images = (await cli('demo', ['image', 'list', '-f', 'json'])) as { ID: string; Name: string; Status: string }[];
  expect(images).toEqual(expect.arrayContaining([{ ID: imageId, Name: 'osc-snap', Status: 'active' }]));
  const image = (await cli('demo', ['image', 'show', imageId, '-f', 'json'])) as Record<string, unknown>;
  expect(image).toMatchObject({ id: imageId, status: 'active', owner: demo.projectId });
  // Nova's snapshot properties, on either backend
  expect(image.properties).toMatchObject({ image_type: 'snapshot', instance_uuid: inst.uuid, user_id: demo.userId });
  expect(image).toMatchObject({ disk_format: 'raw', container_format: 'bare', visibility: 'private' });

  const saved = join(dir, 'saved.img');
  await cli('demo', ['image', 'save', '--file', saved, imageId]);
  const expected = diskBytesFor(inst.uuid);
  const bytes = await readFile(saved);
  expect(bytes.length).toBe(expected.length);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));

  await cli('demo', ['image', 'delete', imageId]);
  const after = (await cli('demo', ['image', 'list', '-f', 'json'])) as { ID: string }[];
  expect(after.map((i) => i.ID)).not.toContain(imageId);
});

it('openstack server backup create --type daily --rotate N: a backup image, rotated, and its createBackup event', async () => {
  const inst = await stack.addInstance({ projectId: demo.projectId, userId: demo.userId });
  const first = (await cli('demo', ['server', 'backup', 'create', '--name', 'n', '--type', 'daily', '--rotate', '7', '--wait', inst.uuid, '-f', 'json'])) as Record<string, unknown>;
  // The CLI prints the image as it found it before --wait: its status then is not yet active.
  expect(first).toMatchObject({ name: 'n' });
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
  const image = (await cli('demo', ['image', 'show', String(first.id), '-f', 'json'])) as Record<string, unknown>;
  expect(image).toMatchObject({ status: 'active' });
  expect(image.properties).toMatchObject({ image_type: 'backup', backup_type: 'daily', instance_uuid: inst.uuid });

  // --rotate 1: once the second is active, the first goes (Nova's rotation)
  const second = (await cli('demo', ['server', 'backup', 'create', '--name', 'n2', '--type', 'daily', '--rotate', '1', '--wait', inst.uuid, '-f', 'json'])) as Record<string, unknown>;
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
  const left = (await cli('demo', ['image', 'list', '-f', 'json'])) as { ID: string }[];
  expect(left.map((i) => i.ID)).toContain(String(second.id));
  expect(left.map((i) => i.ID)).not.toContain(String(first.id));

  const events = (await cli('demo', ['server', 'event', 'list', inst.uuid, '-f', 'json'])) as { 'Request ID': string; Action: string }[];
  expect(events.map((e) => e.Action)).toEqual(['createBackup', 'createBackup']);
  const event = (await cli('demo', ['server', 'event', 'show', inst.uuid, events[0]?.['Request ID'] ?? '', '-f', 'json'])) as Record<string, unknown>;
  expect(JSON.stringify(event.events)).toMatch(/compute_backup_instance.*Success|Success.*compute_backup_instance/);
});

it("a second server image create while one runs gets Nova's 409, as the CLI prints it", async () => {
  const inst = await stack.addInstance({ projectId: demo.projectId, userId: demo.userId });
  const hold = stack.cloud.holdUpload(inst.uuid);
  const first = (await cli('demo', ['server', 'image', 'create', '--name', 'first', inst.uuid, '-f', 'json'])) as Record<string, unknown>;
  try {
    await hold.reached;
    const second = await openstack(clouds, 'demo', ['server', 'image', 'create', '--name', 'second', inst.uuid], { cwd: dir });
    expect(second.code).not.toBe(0);
    // openstacksdk's words: "ConflictException: 409: Client Error for url: …, <Nova's message>"
    expect(second.stderr).toMatch(/ConflictException: 409/);
    expect(second.stderr).toMatch(/Cannot 'createImage' instance [0-9a-f-]{36} while it is in task_state image_\w+/);
  } finally {
    hold.release();
  }
  await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
  const image = (await cli('demo', ['image', 'show', String(first.id), '-f', 'json'])) as Record<string, unknown>;
  expect(image).toMatchObject({ name: 'first', status: 'active' });
});
});
