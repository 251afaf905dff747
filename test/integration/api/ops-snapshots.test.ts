// Ops endpoints over the real stack: a failed snapshot (injected upload failure) shows up in
// visibility, is retried through the createImage path and ends active; a running one shows its
// progress; refused starts undo everything.
import { createHash } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { startApi } from '../../../src/api';
import { createLogger } from '../../../src/observability';
import { snapshotWorkflowId } from '../../../src/contract';
import { memberFailureText } from '../../../src/api/member-failure';
import { call, createImage, eventually } from '../../support/api-http';
import { TOKENS, startApiStack, type ApiStack } from '../../support/api-stack';
import { diskBytesFor } from '../../support/api-stub-activities';

let stack: ApiStack;
let url: string;
beforeAll(async () => {
  stack = await startApiStack();
  url = stack.api.url;
});
afterAll(async () => {
  await stack?.stop();
});

interface Run {
  workflowId: string;
  runId: string;
  state: string;
  instanceUuid: string | null;
  host: string | null;
  imageId: string | null;
  temporalUiUrl: string | null;
  error?: string | null;
  name?: string | null;
  progress?: { step: string; bytesTotal: number } | null;
}

async function listed(query: string): Promise<Run[]> {
  const answer = await call(url, { path: `/ops/snapshots?${query}`, token: TOKENS.admin });
  expect(answer.status).toBe(200);
  return (answer.json as { snapshots: Run[] }).snapshots;
}

async function progressOf(instanceUuid: string, token: string): Promise<Run> {
  const answer = await call(url, { path: `/v2.1/servers/${instanceUuid}/snapshot-progress`, token });
  expect(answer.status).toBe(200);
  return (answer.json as { snapshot: Run }).snapshot;
}

async function detail(workflowId: string): Promise<Run> {
  const answer = await call(url, { path: `/ops/snapshots/${workflowId}`, token: TOKENS.admin });
  expect(answer.status).toBe(200);
  return (answer.json as { snapshot: Run }).snapshot;
}

describe('a failed snapshot, listed and retried', () => {
  it('is listed as failed with its error, leaves no image, and its retry makes a new image that ends active', async () => {
    const inst = await stack.addInstance();
    const workflowId = snapshotWorkflowId(inst.uuid);
    stack.cloud.failUploads(inst.uuid, 1);
    const first = await createImage(url, TOKENS.demo, inst.uuid, { name: 'nightly', metadata: { tier: 'gold' } }, { 'OpenStack-API-Version': 'compute 2.45' });
    expect(first.status).toBe(202);
    const failedImage = (first.json as { image_id: string }).image_id;
    await expect(stack.temporal.workflow.getHandle(workflowId).result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(await stack.imagesOf(inst.uuid)).toEqual([]);
    expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();

    const failed = await eventually(async () => (await listed(`state=failed&instance=${inst.uuid}`)).find((r) => r.workflowId === workflowId), 'failed run in visibility');
    expect(failed).toMatchObject({ state: 'failed', instanceUuid: inst.uuid, host: stack.host, imageId: failedImage });
    expect(failed.temporalUiUrl).toBe(`http://127.0.0.1:8233/namespaces/default/workflows/${workflowId}/${failed.runId}`);
    expect((await listed(`state=failed&host=${stack.host}`)).map((r) => r.workflowId)).toContain(workflowId);
    expect((await listed(`state=failed&host=nohost-${inst.uuid.slice(0, 8)}`)).map((r) => r.workflowId)).not.toContain(workflowId);
    expect((await listed(`state=running&instance=${inst.uuid}`)).map((r) => r.workflowId)).not.toContain(workflowId);

    const shown = await detail(workflowId);
    expect(shown).toMatchObject({ state: 'failed', name: 'nightly', runId: failed.runId });
    expect(shown.error).toContain('injected upload failure');

    // The owner sees that it failed, not the failure's text, host or the internal Temporal UI link.
    const owners = await progressOf(inst.uuid, TOKENS.demo);
    expect(owners).toMatchObject({ state: 'failed', runId: failed.runId, host: null, temporalUiUrl: null, error: memberFailureText('InjectedFailure') });
    expect(JSON.stringify(owners)).not.toContain('injected');
    expect(await progressOf(inst.uuid, TOKENS.admin)).toMatchObject({ host: stack.host, temporalUiUrl: failed.temporalUiUrl, error: shown.error });

    const retry = await call(url, { method: 'POST', path: `/ops/snapshots/${workflowId}/retry`, token: TOKENS.admin });
    expect(retry.status).toBe(202);
    const retried = (retry.json as { snapshot: { runId: string; imageId: string; temporalUiUrl: string } }).snapshot;
    expect(retried.runId).not.toBe(failed.runId);
    expect(retried.imageId).not.toBe(failedImage);
    expect(retried.temporalUiUrl).toContain(`/workflows/${workflowId}/${retried.runId}`);

    await stack.temporal.workflow.getHandle(workflowId, retried.runId).result();
    const image = await stack.imageClient(TOKENS.demo).get(retried.imageId);
    expect(image).toMatchObject({ status: 'active', name: 'nightly', owner: 'demo' });
    expect(image.properties.tier).toBe('gold');
    expect(image.checksum).toBe(createHash('md5').update(diskBytesFor(inst.uuid)).digest('hex'));
    expect((await stack.imagesOf(inst.uuid)).map((i) => i.id)).toEqual([retried.imageId]);

    const done = await eventually(async () => (await listed(`state=completed&instance=${inst.uuid}`)).find((r) => r.runId === retried.runId), 'completed retry in visibility');
    expect(done.imageId).toBe(retried.imageId);
    expect((await detail(workflowId)).state).toBe('completed');

    const again = await call(url, { method: 'POST', path: `/ops/snapshots/${workflowId}/retry`, token: TOKENS.admin });
    expect(again.status).toBe(409);
    expect((again.json as { conflictingRequest: { message: string } }).conflictingRequest.message).toContain('only a failed snapshot can be retried');
  });

  it('404 for unknown or malformed workflow ids, 400 for bad filters', async () => {
    expect((await call(url, { method: 'POST', path: `/ops/snapshots/${snapshotWorkflowId('5b0c2f4e-3c1a-4d59-8f0e-6c2a9b1d7e10')}/retry`, token: TOKENS.admin })).status).toBe(404);
    expect((await call(url, { path: '/ops/snapshots/not-a-workflow', token: TOKENS.admin })).status).toBe(404);
    expect((await call(url, { path: '/ops/snapshots?state=exploded', token: TOKENS.admin })).status).toBe(400);
    expect((await call(url, { path: "/ops/snapshots?host=a'%20OR%201=1", token: TOKENS.admin })).status).toBe(400);
  });
});

describe('a running snapshot', () => {
  it('shows step and bytes to ops and to the owner (without host), and refuses a second createImage', async () => {
    const inst = await stack.addInstance();
    const workflowId = snapshotWorkflowId(inst.uuid);
    const hold = stack.cloud.holdUpload(inst.uuid);
    expect((await createImage(url, TOKENS.demo, inst.uuid, { name: 'held' })).status).toBe(202);
    await hold.reached;
    try {
      const run = await detail(workflowId);
      expect(run.state).toBe('running');
      expect(run.progress).toMatchObject({ step: 'upload', bytesTotal: diskBytesFor(inst.uuid).length });
      await eventually(async () => (await listed(`state=running&instance=${inst.uuid}`)).find((r) => r.workflowId === workflowId), 'running run in visibility');

      const mine = await call(url, { path: `/v2.1/servers/${inst.uuid}/snapshot-progress`, token: TOKENS.demo });
      expect(mine.status).toBe(200);
      expect((mine.json as { snapshot: Run }).snapshot).toMatchObject({ state: 'running', host: null, progress: { step: 'upload' } });
      expect((await call(url, { path: `/v2.1/servers/${inst.uuid}/snapshot-progress`, token: TOKENS.other })).status).toBe(404);

      const second = await createImage(url, TOKENS.demo, inst.uuid, { name: 'again' });
      expect(second.status).toBe(409);
      expect((await stack.imagesOf(inst.uuid)).length).toBe(1);

      // task_state cleared behind the workflow's back: the CAS passes, the start hits the running
      // workflow id (conflict policy FAIL), and the request is undone.
      await stack.store.setTaskStateOrThrow(inst.uuid, ['image_uploading'], null);
      const racing = await createImage(url, TOKENS.demo, inst.uuid, { name: 'racing' });
      expect(racing.status).toBe(409);
      expect((racing.json as { conflictingRequest: { message: string } }).conflictingRequest.message).toContain('still running');
      expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
      expect((await stack.imagesOf(inst.uuid)).map((i) => i.name)).toEqual(['held']);
    } finally {
      hold.release();
    }
    await stack.temporal.workflow.getHandle(workflowId).result().catch(() => undefined);
  });

  it('a run an admin terminates: the owner reads that it was stopped, not the reason given', async () => {
    const inst = await stack.addInstance();
    const workflowId = snapshotWorkflowId(inst.uuid);
    const hold = stack.cloud.holdUpload(inst.uuid);
    try {
      expect((await createImage(url, TOKENS.demo, inst.uuid, { name: 'stopped' })).status).toBe(202);
      await hold.reached;
      const running = await progressOf(inst.uuid, TOKENS.demo);
      expect(running).toMatchObject({ state: 'running', host: null, temporalUiUrl: null, error: null });
      await stack.temporal.workflow.getHandle(workflowId).terminate('host /srv/nova/instances/x unreachable via http://10.0.0.7:8233');
    } finally {
      hold.release();
    }
    const owners = await eventually(async () => {
      const run = await progressOf(inst.uuid, TOKENS.demo);
      return run.state === 'failed' ? run : undefined;
    }, 'terminated run');
    expect(owners.error).toBe('Terminated: The snapshot was stopped by an administrator.');
    expect(JSON.stringify(owners)).not.toMatch(/srv\/nova|10\.0\.0\.7/);
    expect((await progressOf(inst.uuid, TOKENS.admin)).error).toBe('terminated: host /srv/nova/instances/x unreachable via http://10.0.0.7:8233');
  });

  it('404 on snapshot-progress for a server never snapshotted', async () => {
    const inst = await stack.addInstance();
    expect((await call(url, { path: `/v2.1/servers/${inst.uuid}/snapshot-progress`, token: TOKENS.demo })).status).toBe(404);
  });
});

describe('hosts', () => {
  it('lists the hosts of the instance store with their server counts', async () => {
    const answer = await call(url, { path: '/ops/hosts', token: TOKENS.admin });
    const hosts = (answer.json as { hosts: { host: string; servers: number }[] }).hosts;
    const ours = hosts.find((h) => h.host === stack.host);
    expect(ours?.servers).toBe((await stack.store.listByHost(stack.host)).length);
  });
});

describe('image service unavailable', () => {
  it('answers 503 with a fixed sentence: the image service\'s address and error stay in the log', async () => {
    const api = await startApi({
      port: 0,
      store: { kind: 'sqlite', path: `${stack.dir}/instances.sqlite` },
      imageUrl: 'http://127.0.0.1:1',
      auth: stack.auth,
      temporal: stack.temporal,
      logger: createLogger({ name: 'dead-images', level: 'silent' }),
    });
    try {
      const inst = await stack.addInstance();
      const answer = await createImage(api.url, TOKENS.demo, inst.uuid, { name: 'nowhere' });
      expect(answer.status).toBe(503);
      const message = (answer.json as { serviceUnavailable: { message: string } }).serviceUnavailable.message;
      expect(message).toBe('The image service could not create the snapshot image. Nothing was changed; try again later.');
      expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
    } finally {
      await api.close();
    }
  });
});

describe('Temporal unavailable', () => {
  it('answers 503 and undoes the image and task_state', async () => {
    const dead = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', connectTimeout: 500 }) });
    const api = await startApi({
      port: 0,
      store: { kind: 'sqlite', path: `${stack.dir}/instances.sqlite` },
      imageUrl: stack.images.url,
      auth: stack.auth,
      temporal: dead,
      workflowStartTimeoutMs: 1_500,
      logger: createLogger({ name: 'dead-temporal', level: 'silent' }),
    });
    try {
      const inst = await stack.addInstance();
      const answer = await createImage(api.url, TOKENS.demo, inst.uuid, { name: 'nowhere' });
      expect(answer.status).toBe(503);
      expect(Object.keys(answer.json as object)).toEqual(['serviceUnavailable']);
      expect((await stack.store.getOrThrow(inst.uuid)).taskState).toBeNull();
      expect(await stack.imagesOf(inst.uuid)).toEqual([]);
    } finally {
      await api.close();
    }
  });
});
