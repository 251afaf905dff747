// The compute API over real HTTP: auth, project isolation, server views, createImage with every
// status code and Nova's bodies, and the snapshot it starts running to an active image.
import { createHash } from 'node:crypto';
import { snapshotWorkflowId } from '../../../src/contract';
import { call, createImage, type HttpAnswer } from '../../support/api-http';
import { POWER_STATE_CRASHED, POWER_STATE_SHUTDOWN, TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { diskBytesFor } from '../../support/api-stub-activities';

let stack: ApiStack;
let url: string;
beforeAll(async () => {
  stack = await startApiStack({ metadataQuota: 3 });
  url = stack.api.url;
});
afterAll(async () => {
  await stack?.stop();
});

function fault(answer: HttpAnswer, name: string, code: number): string {
  expect(answer.status).toBe(code);
  const body = answer.json as Record<string, { code: number; message: string }>;
  expect(Object.keys(body)).toEqual([name]);
  expect(body[name]?.code).toBe(code);
  return body[name]?.message ?? '';
}

/** Nothing changed: task_state still None and no image carries the instance's uuid. */
async function expectUntouched(uuid: string): Promise<void> {
  expect((await stack.store.getOrThrow(uuid)).taskState).toBeNull();
  expect(await stack.imagesOf(uuid)).toEqual([]);
}

describe('auth', () => {
  it('401 without a token, with an unknown token, on compute and image APIs alike', async () => {
    fault(await call(url, { path: '/v2.1/servers' }), 'unauthorized', 401);
    fault(await call(url, { path: '/v2.1/servers', token: 'not-a-real-token-at-all' }), 'unauthorized', 401);
    expect((await call(stack.images.url, { path: '/v2/images' })).status).toBe(401);
    expect((await call(stack.images.url, { path: '/v2/images', token: TOKENS.demo })).status).toBe(200);
  });

  it('ops need admin: 403 for a member token, 200 for admin', async () => {
    fault(await call(url, { path: '/ops/hosts', token: TOKENS.demo }), 'forbidden', 403);
    fault(await call(url, { path: '/ops/snapshots', token: TOKENS.demo }), 'forbidden', 403);
    fault(await call(url, { method: 'POST', path: `/ops/snapshots/${snapshotWorkflowId('00000000-0000-4000-8000-000000000000')}/retry`, token: TOKENS.demo }), 'forbidden', 403);
    expect((await call(url, { path: '/ops/hosts', token: TOKENS.admin })).status).toBe(200);
  });
});

describe('servers', () => {
  it('lists only the token\'s project, shows host to admins only, 404s across projects both ways', async () => {
    const mine = await stack.addInstance({ projectId: 'demo' });
    const theirs = await stack.addInstance({ projectId: 'other', powerState: POWER_STATE_SHUTDOWN });

    const list = await call(url, { path: '/v2.1/servers', token: TOKENS.demo });
    const ids = (list.json as { servers: { id: string }[] }).servers.map((s) => s.id);
    expect(ids).toContain(mine.uuid);
    expect(ids).not.toContain(theirs.uuid);

    const detail = await call(url, { path: '/v2.1/servers/detail', token: TOKENS.other });
    const servers = (detail.json as { servers: Record<string, unknown>[] }).servers;
    expect(servers.map((s) => s.id)).toEqual([theirs.uuid]);
    expect(servers[0]).toMatchObject({ status: 'SHUTOFF', 'OS-EXT-STS:vm_state': 'stopped', 'OS-EXT-STS:power_state': 4, 'OS-EXT-STS:task_state': null, tenant_id: 'other' });
    expect(servers[0]).not.toHaveProperty('OS-EXT-SRV-ATTR:host');

    fault(await call(url, { path: `/v2.1/servers/${theirs.uuid}`, token: TOKENS.demo }), 'itemNotFound', 404);
    fault(await call(url, { path: `/v2.1/servers/${mine.uuid}`, token: TOKENS.other }), 'itemNotFound', 404);

    const asAdmin = await call(url, { path: `/v2.1/servers/${mine.uuid}`, token: TOKENS.admin });
    expect(asAdmin.status).toBe(200);
    expect((asAdmin.json as { server: Record<string, unknown> }).server).toMatchObject({ id: mine.uuid, status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': stack.host });

    const all = await call(url, { path: '/v2.1/servers?all_tenants=1', token: TOKENS.admin });
    const allIds = (all.json as { servers: { id: string }[] }).servers.map((s) => s.id);
    expect(allIds).toEqual(expect.arrayContaining([mine.uuid, theirs.uuid]));
    fault(await call(url, { path: '/v2.1/servers?all_tenants=1', token: TOKENS.demo }), 'forbidden', 403);
  });

  it('404 for ids that are not servers, 405 for wrong methods, 404 for unknown paths', async () => {
    const m = fault(await call(url, { path: '/v2.1/servers/not-a-uuid', token: TOKENS.demo }), 'itemNotFound', 404);
    expect(m).toBe('Instance not-a-uuid could not be found.');
    fault(await call(url, { method: 'DELETE', path: '/v2.1/servers/detail', token: TOKENS.demo }), 'badMethod', 405);
    fault(await call(url, { path: '/v2.1/flavors', token: TOKENS.demo }), 'itemNotFound', 404);
  });
});

describe('createImage', () => {
  it('202 with an empty body and Location below 2.45; the snapshot ends active with the disk bytes and task_state None', async () => {
    const inst = await stack.addInstance();
    const answer = await createImage(url, TOKENS.demo, inst.uuid, { name: 'snap-old', metadata: { purpose: 'test' } });
    expect(answer.status).toBe(202);
    expect(answer.text).toBe('');
    const location = String(answer.headers.location);
    expect(location).toMatch(new RegExp(`^${stack.images.url}/v2/images/[0-9a-f-]{36}$`));
    const imageId = location.split('/').pop() ?? '';
    expect(answer.headers['openstack-api-version']).toBe('compute 2.1');

    await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
    const image = await stack.imageClient(TOKENS.demo).get(imageId);
    expect(image).toMatchObject({ status: 'active', name: 'snap-old', owner: 'demo', visibility: 'private' });
    expect(image.properties).toMatchObject({ purpose: 'test', image_type: 'snapshot', instance_uuid: inst.uuid });
    const expected = diskBytesFor(inst.uuid);
    expect(image.size).toBe(expected.length);
    expect(image.checksum).toBe(createHash('md5').update(expected).digest('hex'));
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
  });

  it('answers {"image_id"} from microversion 2.45 (both headers), inheriting base image properties', async () => {
    const base = await stack.imageClient(TOKENS.demo).create({ name: 'base', disk_format: 'qcow2', container_format: 'bare', properties: { os_distro: 'cirros' } });
    const inst = await stack.addInstance({ imageRef: base.id });
    const answer = await createImage(url, TOKENS.demo, inst.uuid, { name: 'snap-new' }, { 'OpenStack-API-Version': 'compute 2.45' });
    expect(answer.status).toBe(202);
    const imageId = (answer.json as { image_id: string }).image_id;
    expect(answer.headers.location).toBe(`${stack.images.url}/v2/images/${imageId}`);
    const image = await stack.imageClient(TOKENS.demo).get(imageId);
    expect(image).toMatchObject({ disk_format: 'qcow2', container_format: 'bare' });
    expect(image.properties).toMatchObject({ os_distro: 'cirros', base_image_ref: base.id });
    await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();

    const legacy = await createImage(url, TOKENS.demo, inst.uuid, { name: 'snap-legacy' }, { 'X-OpenStack-Nova-API-Version': '2.60' });
    expect(legacy.status).toBe(202);
    expect(legacy.json).toEqual({ image_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    await stack.temporal.workflow.getHandle(snapshotWorkflowId(inst.uuid)).result();
  });

  it('400 with Nova\'s badRequest body for invalid bodies, changing nothing', async () => {
    const inst = await stack.addInstance();
    const bad: unknown[] = [
      {},
      { name: '' },
      { name: 'x'.repeat(256) },
      { name: ' leading' },
      { name: 'ok', metadata: { k: 1 } },
      { name: 'ok', metadata: { k: 'v'.repeat(256) } },
      { name: 'ok', metadata: { 'bad/key': 'v' } },
      { name: 'ok', extra: true },
      { name: 'ok', metadata: { visibility: 'public' } },
      'a string',
    ];
    for (const body of bad) {
      const answer = await createImage(url, TOKENS.demo, inst.uuid, body);
      // "Invalid input for field/attribute …", or Nova's InvalidName text ("An invalid 'name' value …")
      expect(fault(answer, 'badRequest', 400)).toMatch(/invalid/i);
    }
    fault(await call(url, { method: 'POST', path: `/v2.1/servers/${inst.uuid}/action`, token: TOKENS.demo, body: { reboot: { type: 'SOFT' } } }), 'badRequest', 400);
    fault(await call(url, { method: 'POST', path: `/v2.1/servers/${inst.uuid}/action`, token: TOKENS.demo, body: '{"createImage":', headers: { 'Content-Type': 'application/json' } }), 'badRequest', 400);
    await expectUntouched(inst.uuid);
  });

  it("400 with Nova's InvalidName text for a name holding a control character, changing nothing", async () => {
    const inst = await stack.addInstance();
    for (const name of ['snap\u0000shot', 'snap\nshot', 'snap\u001b[2J', 'trailing\u00a0']) {
      const m = fault(await createImage(url, TOKENS.demo, inst.uuid, { name }), 'badRequest', 400);
      expect(m).toBe("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.");
    }
    const key = fault(await createImage(url, TOKENS.demo, inst.uuid, { name: 'ok', metadata: { 'k\u0000': 'v' } }), 'badRequest', 400);
    expect(key).toMatch(/^Invalid input for field\/attribute createImage\.metadata/);
    await expectUntouched(inst.uuid);
  });

  it('403 over the metadata quota, 413 for an oversized body, 415 for a non-JSON body', async () => {
    const inst = await stack.addInstance();
    const m = fault(await createImage(url, TOKENS.demo, inst.uuid, { name: 'q', metadata: { a: '1', b: '2', c: '3', d: '4' } }), 'forbidden', 403);
    expect(m).toBe('Image metadata limit exceeded');
    fault(await createImage(url, TOKENS.demo, inst.uuid, { name: 'big', metadata: { a: 'x'.repeat(200_000) } }), 'overLimit', 413);
    const text = await call(url, { method: 'POST', path: `/v2.1/servers/${inst.uuid}/action`, token: TOKENS.demo, body: 'createImage=x', headers: { 'Content-Type': 'text/plain' } });
    fault(text, 'badMediaType', 415);
    await expectUntouched(inst.uuid);
  });

  it('404 for unknown servers and other projects\' servers, leaving no image', async () => {
    const theirs = await stack.addInstance({ projectId: 'other' });
    const m = fault(await createImage(url, TOKENS.demo, theirs.uuid, { name: 'steal' }), 'itemNotFound', 404);
    expect(m).toBe(`Instance ${theirs.uuid} could not be found.`);
    fault(await createImage(url, TOKENS.demo, '3f1d7c1e-58a4-4c8e-9a53-0f7f2b1d9e11', { name: 'ghost' }), 'itemNotFound', 404);
    await expectUntouched(theirs.uuid);
  });

  it('409 with Nova\'s texts for a set task_state or a wrong vm_state, leaving no image', async () => {
    const busy = await stack.addInstance();
    await stack.store.setTaskStateOrThrow(busy.uuid, [null], 'image_uploading');
    const m1 = fault(await createImage(url, TOKENS.demo, busy.uuid, { name: 's' }), 'conflictingRequest', 409);
    expect(m1).toBe(`Cannot 'createImage' instance ${busy.uuid} while it is in task_state image_uploading`);
    expect(await stack.imagesOf(busy.uuid)).toEqual([]);
    expect((await stack.store.getOrThrow(busy.uuid)).taskState).toBe('image_uploading');

    const broken = await stack.addInstance({ powerState: POWER_STATE_CRASHED });
    const m2 = fault(await createImage(url, TOKENS.demo, broken.uuid, { name: 's' }), 'conflictingRequest', 409);
    expect(m2).toBe(`Cannot 'createImage' instance ${broken.uuid} while it is in vm_state error`);
    await expectUntouched(broken.uuid);
  });

  it('406 for an unsupported microversion, 400 for a malformed one', async () => {
    const inst = await stack.addInstance();
    fault(await createImage(url, TOKENS.demo, inst.uuid, { name: 's' }, { 'OpenStack-API-Version': 'compute 3.0' }), 'notAcceptable', 406);
    fault(await createImage(url, TOKENS.demo, inst.uuid, { name: 's' }, { 'OpenStack-API-Version': 'compute two' }), 'badRequest', 400);
    await expectUntouched(inst.uuid);
  });
});

describe('documents', () => {
  it('serves OpenAPI 3 generated from the request schemas', async () => {
    const doc = await call(url, { path: '/openapi.json' });
    expect(doc.status).toBe(200);
    const json = doc.json as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[] } }> } }>> };
    expect(json.openapi).toMatch(/^3\./);
    const body = json.paths['/v2.1/servers/{server_id}/action']?.post?.requestBody?.content['application/json']?.schema;
    // One action per body (the route's precheck): createImage and createBackup, neither required alone.
    expect(body).toMatchObject({
      type: 'object',
      properties: {
        createImage: { required: ['name'], properties: { name: { maxLength: 255, minLength: 1 } } },
        createBackup: { required: expect.arrayContaining(['name', 'backup_type', 'rotation']) },
      },
    });
    expect(body?.required).toBeUndefined();
    expect(Object.keys(json.paths)).toEqual(expect.arrayContaining(['/', '/v2.1', '/ops/snapshots', '/ops/snapshots/{workflow_id}/retry', '/ops/hosts']));
  });

  it('serves the version document without a token, with Nova\'s fields', async () => {
    const v21 = { id: 'v2.1', status: 'CURRENT', version: '2.96', min_version: '2.1', updated: '2013-07-23T11:33:21Z' };
    const root = await call(url, { path: '/' });
    expect(root.status).toBe(200);
    expect(root.json).toEqual({ versions: [{ ...v21, links: [{ rel: 'self', href: `${url}/v2.1/` }] }] });
    for (const path of ['/v2.1', '/v2.1/']) {
      const one = await call(url, { path });
      expect(one.status).toBe(200);
      expect(one.json).toMatchObject({ version: { ...v21, 'media-types': [{ base: 'application/json' }] } });
    }
  });

  it('authenticates before it reads a body: 401 for a malformed body on any path, then 404 with a token', async () => {
    fault(await call(url, { method: 'POST', path: '/v2.1/flavors', body: '{', headers: { 'Content-Type': 'application/json' } }), 'unauthorized', 401);
    fault(await call(url, { method: 'POST', path: '/v2.1/servers/x/action', body: '{', headers: { 'Content-Type': 'application/json' } }), 'unauthorized', 401);
    fault(await call(url, { method: 'POST', path: '/v2.1/flavors', token: TOKENS.demo, body: '{', headers: { 'Content-Type': 'application/json' } }), 'itemNotFound', 404);
  });

  it('serves Prometheus metrics including the snapshot families and request counts', async () => {
    const metrics = await call(url, { path: '/metrics' });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('# TYPE snapshot_duration_seconds histogram');
    expect(metrics.text).toContain('# TYPE snapshot_failures_total counter');
    expect(metrics.text).toContain('# TYPE snapshot_bytes_uploaded_total counter');
    expect(metrics.text).toMatch(/compute_api_requests_total\{[^}]*status="202"[^}]*\} [1-9]/);
  });
});
