// Who may act on what, over real HTTP against the compute API and the image service: a server
// whose domain names no owner is no project's (the demo token used to list, snapshot and download
// every such domain); an admin role in one project is that project's admin only (Nova's bug
// 968696); the workers' service identity writes snapshot images and is refused by the compute API.
import { Readable } from 'node:stream';
import { snapshotWorkflowId } from '../../../src/contract';
import { ImageNotFound, ImageRequestRejected } from '../../../src/images/client';
import { call, createImage } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';

let stack: ApiStack;
let url: string;
beforeAll(async () => {
  stack = await startApiStack();
  url = stack.api.url;
});
afterAll(async () => {
  await stack?.stop();
});

function serverIds(answer: { json: unknown }): string[] {
  return (answer.json as { servers: { id: string }[] }).servers.map((s) => s.id);
}

async function refusal(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'accepted',
    (err: unknown) => err,
  );
}

describe('a server whose domain names no owner', () => {
  it('is no project\'s: members never see, snapshot or follow it; a cloud admin does', async () => {
    const ownerless = await stack.addInstance({ projectId: null });
    expect(ownerless.projectId).toBeNull();
    for (const token of [TOKENS.demo, TOKENS.other, TOKENS.otherAdmin]) {
      expect(serverIds(await call(url, { path: '/v2.1/servers', token }))).not.toContain(ownerless.uuid);
      expect(serverIds(await call(url, { path: '/v2.1/servers/detail', token }))).not.toContain(ownerless.uuid);
      expect((await call(url, { path: `/v2.1/servers/${ownerless.uuid}`, token })).status).toBe(404);
      expect((await createImage(url, token, ownerless.uuid, { name: 'steal' })).status).toBe(404);
      expect((await call(url, { path: `/v2.1/servers/${ownerless.uuid}/snapshot-progress`, token })).status).toBe(404);
      expect((await call(url, { path: `/v2.1/servers/${ownerless.uuid}/os-instance-actions`, token })).status).toBe(404);
    }
    expect((await stack.store.getOrThrow(ownerless.uuid)).taskState).toBeNull();
    expect(await stack.imagesOf(ownerless.uuid)).toEqual([]);

    const all = await call(url, { path: '/v2.1/servers/detail?all_tenants=1', token: TOKENS.admin });
    const listed = (all.json as { servers: Record<string, unknown>[] }).servers.find((s) => s.id === ownerless.uuid);
    expect(listed).toMatchObject({ tenant_id: '', 'OS-EXT-SRV-ATTR:host': stack.host });
    const accepted = await createImage(url, TOKENS.admin, ownerless.uuid, { name: 'by-admin' }, { 'OpenStack-API-Version': 'compute 2.45' });
    expect(accepted.status).toBe(202);
    await stack.temporal.workflow.getHandle(snapshotWorkflowId(ownerless.uuid)).result();
    const image = await stack.imageClient(TOKENS.admin).get((accepted.json as { image_id: string }).image_id);
    expect(image).toMatchObject({ status: 'active', owner: 'admin' });
    await expect(stack.imageClient(TOKENS.demo).get(image.id)).rejects.toBeInstanceOf(ImageNotFound);
  });
});

describe('an admin role in one project', () => {
  it("is that project's admin only: never another project's servers or images, no ops, no all_tenants", async () => {
    const demo = await stack.addInstance({ projectId: 'demo' });
    const own = await stack.addInstance({ projectId: 'other' });
    const token = TOKENS.otherAdmin;
    expect(serverIds(await call(url, { path: '/v2.1/servers', token }))).toEqual(expect.arrayContaining([own.uuid]));
    expect(serverIds(await call(url, { path: '/v2.1/servers', token }))).not.toContain(demo.uuid);
    expect((await call(url, { path: '/v2.1/servers?all_tenants=1', token })).status).toBe(403);
    expect((await call(url, { path: `/v2.1/servers/${demo.uuid}`, token })).status).toBe(404);
    expect((await createImage(url, token, demo.uuid, { name: 'steal' })).status).toBe(404);
    for (const path of ['/ops/hosts', '/ops/snapshots']) expect((await call(url, { path, token })).status).toBe(403);
    const shown = await call(url, { path: `/v2.1/servers/${own.uuid}`, token });
    expect(shown.status).toBe(200);
    expect((shown.json as { server: Record<string, unknown> }).server).not.toHaveProperty('OS-EXT-SRV-ATTR:host');

    const demoImages = stack.imageClient(TOKENS.demo);
    const image = await demoImages.create({ name: 'demo-data', disk_format: 'raw', container_format: 'bare' });
    await demoImages.upload(image.id, Readable.from([Buffer.from('demo project bytes')]));
    const theirs = stack.imageClient(token);
    expect((await theirs.list()).map((i) => i.id)).not.toContain(image.id);
    await expect(theirs.get(image.id)).rejects.toBeInstanceOf(ImageNotFound);
    await expect(theirs.download(image.id)).rejects.toBeInstanceOf(ImageNotFound);
    await expect(theirs.delete(image.id)).rejects.toBeInstanceOf(ImageNotFound);
    expect(await refusal(theirs.create({ name: 'for-demo', owner: 'demo' }))).toMatchObject({ status: 403 });
    expect((await demoImages.get(image.id)).status).toBe('active');
  });
});

describe("the workers' service identity", () => {
  it('is refused by every compute API route', async () => {
    const demo = await stack.addInstance({ projectId: 'demo' });
    for (const path of ['/v2.1/servers', '/v2.1/servers/detail', `/v2.1/servers/${demo.uuid}`, '/ops/hosts', '/ops/snapshots']) {
      expect((await call(url, { path, token: TOKENS.service })).status).toBe(403);
    }
    expect((await createImage(url, TOKENS.service, demo.uuid, { name: 'x' })).status).toBe(403);
    expect((await stack.store.getOrThrow(demo.uuid)).taskState).toBeNull();
  });

  it("writes any project's snapshot images but never makes one public or reads image data", async () => {
    const service = stack.imageClient(TOKENS.service);
    const made = await service.create({ name: 'snap-for-demo', owner: 'demo', disk_format: 'raw', container_format: 'bare' });
    expect(made.owner).toBe('demo');
    await service.upload(made.id, Readable.from([Buffer.from('snapshot bytes')]));
    expect(await stack.imageClient(TOKENS.demo).get(made.id)).toMatchObject({ status: 'active', owner: 'demo' });
    const read = await refusal(service.download(made.id));
    expect(read).toBeInstanceOf(ImageRequestRejected);
    expect(read).toMatchObject({ status: 403 });
    expect(await refusal(service.create({ name: 'public', visibility: 'public' }))).toMatchObject({ status: 403 });
    const leftover = await stack.imageClient(TOKENS.demo).create({ name: 'failed-snap' });
    await service.delete(leftover.id);
    await expect(stack.imageClient(TOKENS.demo).get(leftover.id)).rejects.toBeInstanceOf(ImageNotFound);
  });
});
