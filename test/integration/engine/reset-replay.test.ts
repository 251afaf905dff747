// Ops replay a failed snapshot with Temporal's Reset (the Web UI's button, here the CLI's
// `workflow reset`). The reset run re-executes after the failed run's compensations already ran:
// the export was closed, the work dir removed, the image deleted, task_state reset. Every step
// re-derives what it needs (a new export, a new image, task_state re-claimed), so the reset run
// completes with a verified image, whichever event it starts from.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { snapshotWorkflowId, type SnapshotResult } from '../../../src/contract';
import { ImageTooLarge, type ImageClient } from '../../../src/images/client';
import { loadTemporalSettings } from '../../../src/temporal/connection-config';
import { temporalCliPath } from '../../../src/temporal/dev-server';
import { startEngine, type Engine } from '../../support/engine-harness';
import { createRealGuest, guestOf, verifyGuestImage } from '../../support/guest/real-guest-run';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** The WorkflowTaskCompleted event right before `activity` was first scheduled: where a reset re-runs it. */
function eventBefore(history: History, activity: string): number {
  const events = history.events ?? [];
  const scheduled = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  if (scheduled < 0) throw new Error(`${activity} was never scheduled`);
  for (let i = scheduled; i >= 0; i--) {
    const e = events[i];
    if (e?.workflowTaskCompletedEventAttributes) return Number(e.eventId);
  }
  throw new Error(`no workflow task completed before ${activity}`);
}

async function temporalReset(workflowId: string, runId: string, where: { eventId: number } | { type: 'FirstWorkflowTask' }): Promise<void> {
  const { address, namespace } = loadTemporalSettings();
  const target = 'eventId' in where ? ['--event-id', String(where.eventId)] : ['--type', where.type];
  await promisify(execFile)(temporalCliPath(), ['workflow', 'reset', '--address', address, '--namespace', namespace, '--workflow-id', workflowId, '--run-id', runId, ...target, '--reason', 'replay a failed snapshot', '--yes'], {
    timeout: 30_000,
  });
}

describe('a failed snapshot replayed with Temporal reset', () => {
  let engine: Engine;
  let failAppends = true;
  beforeAll(async () => {
    engine = await startEngine({
      wrapImages: (images): ImageClient => ({
        ...bindAll(images),
        // A refusal, not a break: the run fails at once instead of retrying its stream.
        appendStaged: (id, offset, body, o) => (failAppends ? Promise.reject(new ImageTooLarge('injected: the image store is over quota')) : images.appendStaged(id, offset, body, o)),
      }),
    });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it.each([{ from: 'streamSnapshot' }, { from: 'openSnapshotExport' }, { from: 'first workflow task' }])(
    'reset to before $from: completes into a new image after the compensations ran',
    async ({ from }) => {
      const fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 256 } });
      try {
        const instance = await engine.register(fixture);
        failAppends = true;
        const { imageId, result } = await engine.startSnapshot(instance.uuid);
        await expect(result).rejects.toBeInstanceOf(WorkflowFailedError);
        // The failed run's compensations: image gone, task_state reset, nothing on the host.
        await expect(engine.images.get(imageId)).rejects.toThrow(/No image found/);
        expect((await engine.store.getOrThrow(instance.uuid)).taskState).toBeNull();
        expect(await engine.host.workDirs.list()).toEqual([]);

        failAppends = false;
        const failed = engine.client.workflow.getHandle(snapshotWorkflowId(instance.uuid));
        const { runId } = await failed.describe();
        const history = await failed.fetchHistory();
        await temporalReset(failed.workflowId, runId, from === 'first workflow task' ? { type: 'FirstWorkflowTask' } : { eventId: eventBefore(history, from) });

        const reset = engine.client.workflow.getHandle(failed.workflowId);
        const replayed: SnapshotResult = await reset.result();
        expect((await reset.describe()).runId).not.toBe(runId);
        expect(replayed).toMatchObject({ status: 'active', mode: 'live', dataPath: 'backup-job', replacedImageId: imageId });
        expect(replayed.imageId).not.toBe(imageId);
        const image = await verifyGuestImage(engine.images, replayed.imageId, guestOf(fixture), 0);
        expect(image.fsckClean).toBe(true);
        expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
        expect((await engine.store.getOrThrow(instance.uuid)).taskState).toBeNull();
        expect(await engine.host.workDirs.list()).toEqual([]);
      } finally {
        await fixture.cleanup();
      }
    },
    240_000,
  );

  it('a reset run of an instance that is gone fails cleanly', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'idle' } });
    let workflowId = '';
    try {
      const instance = await engine.register(fixture);
      workflowId = snapshotWorkflowId(instance.uuid);
      failAppends = true;
      const { result } = await engine.startSnapshot(instance.uuid);
      await expect(result).rejects.toBeInstanceOf(WorkflowFailedError);
      const { runId } = await engine.client.workflow.getHandle(workflowId).describe();
      await fixture.cleanup();
      failAppends = false;
      await temporalReset(workflowId, runId, { type: 'FirstWorkflowTask' });
      await expect(engine.client.workflow.getHandle(workflowId).result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(await engine.host.workDirs.list()).toEqual([]);
    } finally {
      await fixture.cleanup().catch(() => undefined);
    }
  }, 240_000);
});

/** The client's methods bound to it, so that one can be replaced. */
function bindAll(images: ImageClient): ImageClient {
  return {
    create: (m) => images.create(m),
    get: (id) => images.get(id),
    list: (f) => images.list(f),
    delete: (id) => images.delete(id),
    setFormats: (id, f) => images.setFormats(id, f),
    setProperties: (id, p) => images.setProperties(id, p),
    upload: (id, s, o) => images.upload(id, s, o),
    download: (id, o) => images.download(id, o),
    openStagedUpload: (id, size, token, layout) => images.openStagedUpload(id, size, token, layout),
        composes: () => images.composes(),
    stagedUpload: (id) => images.stagedUpload(id),
    appendStaged: (id, offset, body, o) => images.appendStaged(id, offset, body, o),
    commitStaged: (id, c) => images.commitStaged(id, c),
    discardStaged: (id) => images.discardStaged(id),
  };
}
