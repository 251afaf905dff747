// `protected` over HTTP as Glance has it: no one deletes a protected image (403), another project
// cannot touch it (404), its owner clears the flag with a JSON patch, and an admin deletes any
// image that is not protected; a deleted image answers 404.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../../src/auth';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';

const PATCH = 'application/openstack-images-v2.1-json-patch';
let dir: string;
let server: RunningImageServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-protected-'));
  const identities: Record<string, Identity> = {
    p1: { kind: 'project', projectId: 'p1', projectAdmin: false },
    p2: { kind: 'project', projectId: 'p2', projectAdmin: false },
    admin: { kind: 'cloud-admin', projectId: 'ops' },
  };
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 1024, authenticate: (token) => identities[token] ?? null });
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const call = (token: string, method: string, path: string, body?: unknown, type = 'application/json') =>
  fetch(`${server.url}${path}`, { method, headers: { 'X-Auth-Token': token, ...(body === undefined ? {} : { 'Content-Type': type }) }, body: body === undefined ? undefined : JSON.stringify(body) });

it('lets the owner clear protected and an admin delete the image then; nobody deletes it while protected', async () => {
  const created = await call('p1', 'POST', '/v2/images', { name: 'keep', protected: true });
  const { id } = (await created.json()) as { id: string };
  const unprotect = [{ op: 'replace', path: '/protected', value: false }];

  expect((await call('admin', 'DELETE', `/v2/images/${id}`)).status).toBe(403);
  expect((await call('p1', 'DELETE', `/v2/images/${id}`)).status).toBe(403);
  expect((await call('p2', 'PATCH', `/v2/images/${id}`, unprotect, PATCH)).status).toBe(404);
  expect((await call('p1', 'PATCH', `/v2/images/${id}`, [{ op: 'replace', path: '/protected', value: 'no' }], PATCH)).status).toBe(400);
  expect(((await (await call('p1', 'GET', `/v2/images/${id}`)).json()) as { protected: boolean }).protected).toBe(true);

  const cleared = await call('p1', 'PATCH', `/v2/images/${id}`, unprotect, PATCH);
  expect(cleared.status).toBe(200);
  expect(await cleared.json()).toMatchObject({ id, protected: false, status: 'queued' });
  expect((await call('p2', 'DELETE', `/v2/images/${id}`)).status).toBe(404);
  expect((await call('admin', 'DELETE', `/v2/images/${id}`)).status).toBe(204);
  expect((await call('p1', 'GET', `/v2/images/${id}`)).status).toBe(404);
  expect((await call('admin', 'GET', `/v2/images/${id}`)).status).toBe(404);
});
