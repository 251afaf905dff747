import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ComputeHostKey, ImageIdKey, SnapshotStepKey } from '../../../src/temporal/search-attributes';
import { CONTROL_TASK_QUEUE, progressQuery, snapshotWorkflowId, type SnapshotResult } from '../../../src/contract';
import { recordHistory } from '../../support/histories';
import type { FakeInstance, FakeInstanceOptions } from '../../support/stubs/fake-cloud';
import { startStubEnvironment, type StubEnvironment } from '../../support/stubs/stub-workers';

let env: StubEnvironment;
beforeAll(async () => {
  env = await startStubEnvironment();
});
afterAll(async () => {
  await env?.stop();
});

async function snapshot(options: Omit<FakeInstanceOptions, 'uuid'>, viaApi = true, history?: string): Promise<{ inst: FakeInstance; result?: SnapshotResult; error?: Error }> {
  const uuid = randomUUID();
  const inst = env.cloud.add({ uuid, ...options, taskState: viaApi ? 'image_snapshot_pending' : null });
  const imageId = viaApi ? env.cloud.createImageFor(inst) : undefined;
  const handle = await env.client.workflow.start('snapshotInstance', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: snapshotWorkflowId(uuid),
    args: [{ instanceUuid: uuid, name: 'snap', ...(imageId ? { imageId } : {}) }],
  });
  try {
    const result = await handle.result();
    return { inst, result };
  } catch (error) {
    if (!(error instanceof WorkflowFailedError)) throw error;
    return { inst, error };
  } finally {
    if (history) await recordHistory(handle, history);
  }
}

function expectClean(inst: FakeInstance, prior: string): void {
  expect(inst.taskState).toBeNull();
  expect(inst.guest).toBe(prior);
  expect(inst.devicesAttached).toBe(inst.options.devices ?? 2);
  expect(inst.workDirs.size).toBe(0);
}

describe('snapshotInstance branches (stubbed activities, real Temporal)', () => {
  it('live snapshot of a running guest never saves or recreates it', async () => {
    const { inst, result } = await snapshot({ guest: 'running' }, true, 'live');
    expect(result).toMatchObject({ mode: 'live', status: 'active' });
    expect(inst.calls).not.toContain('prepareColdSnapshot');
    expect(inst.calls).not.toContain('restoreGuest');
    expect(inst.calls.filter((c) => c === 'setTaskState')).toHaveLength(4);
    expect(inst.notifications).toEqual(['snapshot.start', 'snapshot.end']);
    expect(inst.imageStatus).toBe('active');
    expectClean(inst, 'running');
  });

  it('cold from running: detach + managedSave, extract, then recreate running and re-attach', async () => {
    const { inst, result } = await snapshot({ guest: 'running', liveCapable: false }, true, 'cold-running');
    expect(result?.mode).toBe('cold');
    const order = inst.calls.filter((c) => ['prepareColdSnapshot', 'extractSnapshot', 'restoreGuest', 'uploadSnapshot'].includes(c));
    expect(order).toEqual(['prepareColdSnapshot', 'extractSnapshot', 'restoreGuest', 'uploadSnapshot']);
    expect(inst.imageStatus).toBe('active');
    expectClean(inst, 'running');
  });

  it('cold from paused comes back paused', async () => {
    const { inst, result } = await snapshot({ guest: 'paused' }, true, 'cold-paused');
    expect(result?.mode).toBe('cold');
    expect(inst.calls).toContain('restoreGuest');
    expectClean(inst, 'paused');
  });

  it('a shut-off guest is snapshotted cold without managedSave or recreate', async () => {
    const { inst, result } = await snapshot({ guest: 'shutoff' }, true, 'shut-off');
    expect(result?.mode).toBe('cold');
    expect(inst.calls).not.toContain('probeLiveSnapshot');
    expect(inst.calls).not.toContain('prepareColdSnapshot');
    expect(inst.calls).not.toContain('restoreGuest');
    expectClean(inst, 'shutoff');
  });

  it('lxc never managed-saves (cold, no recreate)', async () => {
    const { inst, result } = await snapshot({ guest: 'running', liveCapable: false, virtType: 'lxc' });
    expect(result?.mode).toBe('cold');
    expect(inst.calls).not.toContain('prepareColdSnapshot');
    expect(inst.calls).not.toContain('restoreGuest');
    expectClean(inst, 'running');
  });

  it('falls back to cold when the block-job probe says CONFIG_UNSUPPORTED', async () => {
    const { inst, result } = await snapshot({ guest: 'running', probeLive: false });
    expect(result?.mode).toBe('cold');
    expect(inst.calls).toContain('probeLiveSnapshot');
    expect(inst.calls).toContain('prepareColdSnapshot');
    expectClean(inst, 'running');
  });

  it('started by ops without an image: the first activity creates it', async () => {
    const { inst, result } = await snapshot({ guest: 'running' }, false, 'ops-started');
    expect(inst.calls[0]).toBe('createSnapshotImage');
    expect(result?.imageId).toBe(inst.imageId);
    expect(inst.imageStatus).toBe('active');
    expectClean(inst, 'running');
  });

  it('a transient restore failure is retried until the guest is back', async () => {
    const { inst, result } = await snapshot({ guest: 'running', liveCapable: false, failures: { restoreGuest: 'transient' } }, true, 'restore-retried');
    expect(result?.status).toBe('active');
    expect(inst.calls.filter((c) => c === 'restoreGuest')).toHaveLength(2);
    expectClean(inst, 'running');
  });

  it('the instance vanishing mid-way deletes the image and ends failed', async () => {
    const { inst, error } = await snapshot({ guest: 'running', failures: { describeDomain: 'vanish' } }, true, 'instance-vanished-error-notified');
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.imageStatus).toBe('deleted');
    expect(inst.taskState).toBe('deleting');
    expect(inst.workDirs.size).toBe(0);
  });

  const failingSteps: { step: string; guest: 'running' | 'paused'; liveCapable: boolean }[] = [
    { step: 'setTaskState#1', guest: 'running', liveCapable: true },
    { step: 'getDomainPowerState', guest: 'running', liveCapable: true },
    { step: 'notifySnapshot#1', guest: 'running', liveCapable: true },
    { step: 'describeDomain', guest: 'running', liveCapable: true },
    { step: 'probeLiveSnapshot', guest: 'running', liveCapable: true },
    { step: 'prepareColdSnapshot', guest: 'running', liveCapable: false },
    { step: 'prepareColdSnapshot', guest: 'paused', liveCapable: false },
    { step: 'setTaskState#2', guest: 'running', liveCapable: false },
    { step: 'extractSnapshot', guest: 'running', liveCapable: true },
    { step: 'extractSnapshot', guest: 'running', liveCapable: false },
    { step: 'extractSnapshot', guest: 'paused', liveCapable: false },
    { step: 'setTaskState#3', guest: 'running', liveCapable: false },
    { step: 'uploadSnapshot', guest: 'running', liveCapable: true },
    { step: 'uploadSnapshot', guest: 'paused', liveCapable: false },
  ];
  it.each(failingSteps)('failure in $step ($guest, liveCapable=$liveCapable) → image deleted, task_state None, guest restored', async ({ step, guest, liveCapable }) => {
    const history = step === 'uploadSnapshot' && guest === 'paused' ? 'upload-failure-error-notified' : undefined;
    const { inst, error } = await snapshot({ guest, liveCapable, failures: { [step]: 'fatal' } }, true, history);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.imageStatus).toBe('deleted');
    expectClean(inst, guest);
  });

  it('a failure after the upload keeps the active image (its bytes are complete)', async () => {
    const { inst, error } = await snapshot({ guest: 'running', failures: { 'setTaskState#4': 'fatal' } });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.imageStatus).toBe('active');
    expectClean(inst, 'running');
  });

  it('refuses a second concurrent run for the same instance', async () => {
    const uuid = randomUUID();
    const inst = env.cloud.add({ uuid, guest: 'running', failures: {} });
    const imageId = env.cloud.createImageFor(inst);
    const options = { taskQueue: CONTROL_TASK_QUEUE, workflowId: snapshotWorkflowId(uuid), args: [{ instanceUuid: uuid, name: 's', imageId }] };
    const first = await env.client.workflow.start('snapshotInstance', options);
    await expect(env.client.workflow.start('snapshotInstance', options)).rejects.toThrow(/already started/i);
    await first.result();
  });

  it('fails the run (not the workflow task) when the store holds a host name unfit for a queue', async () => {
    const { inst, error } = await snapshot({ guest: 'running', host: 'bad host/..' });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(inst.imageStatus).toBe('deleted');
    expect(inst.taskState).toBeNull();
    expect(inst.calls).not.toContain('getDomainPowerState');
  });

  it('rejects bad input without touching anything', async () => {
    const handle = await env.client.workflow.start('snapshotInstance', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: `snapshot-bad-${randomUUID()}`,
      args: [{ instanceUuid: 'not-a-uuid', name: '' } as never],
    });
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
  });
});

describe('snapshotInstance never clobbers another task', () => {
  it('leaves a deleting instance deleting when the first compare-and-set fails', async () => {
    const uuid = randomUUID();
    const inst = env.cloud.add({ uuid, guest: 'running', taskState: 'deleting' });
    const handle = await env.client.workflow.start('snapshotInstance', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: snapshotWorkflowId(uuid),
      args: [{ instanceUuid: uuid, name: 's', imageId: env.cloud.createImageFor(inst) }],
    });
    await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
    expect(inst.imageStatus).toBe('deleted');
    expect(inst.taskState).toBe('deleting');
    expect(inst.calls).not.toContain('getDomainPowerState');
  });
});

describe('progress', () => {
  it('the progress query and the SnapshotStep search attribute show the running step', async () => {
    const uuid = randomUUID();
    const inst = env.cloud.add({ uuid, guest: 'running', holdAt: 'uploadSnapshot' });
    const handle = await env.client.workflow.start('snapshotInstance', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: snapshotWorkflowId(uuid),
      args: [{ instanceUuid: uuid, name: 's', imageId: env.cloud.createImageFor(inst) }],
    });
    await inst.held;
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ step: 'upload', mode: 'live', host: 'stubhost', imageId: inst.imageId, bytesTotal: 1 << 20 });
    expect(progress.steps.extract).toBeGreaterThanOrEqual(0);
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(SnapshotStepKey)).toBe('upload');
    expect(described.typedSearchAttributes.get(ComputeHostKey)).toBe('stubhost');
    expect(described.typedSearchAttributes.get(ImageIdKey)).toBe(inst.imageId);
    inst.release();
    const result = await handle.result();
    expect(Object.keys(result.steps)).toEqual(expect.arrayContaining(['upload', 'extract', 'task_state_none']));
    expect((await handle.query(progressQuery)).step).toBe('done');
  });
});
