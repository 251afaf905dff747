// Nova's driver tries `root_disk.direct_snapshot` before its generic path and falls back to that on
// ImageUnacceptable, Forbidden or NotImplementedError. So here: where the host described the disk
// as one it would snapshot directly (an RBD disk, Glance on the same cluster), one step asks the
// host to; when it is not taken (Glance refused the location, the pool is not reachable), nothing
// of it is left in the cluster and the caller streams, as before.
import { log, patched } from '@temporalio/workflow';
import type { ExtractContext, ExtractOutcome } from './extract-context';

/** The snapshot done inside the cluster, or null: stream it. */
export async function attemptDirectSnapshot(ctx: ExtractContext): Promise<ExtractOutcome | null> {
  const { instance, description, mode, host, control, progress, saga } = ctx;
  // Added with the direct snapshot: runs recorded before it replay without the step.
  if (description.directSnapshot !== true || !patched('rbd-direct-snapshot')) return null;
  // Registered before the step: an attempt killed mid-way whose retries all die leaves its copy
  // and its snapshot, which the activity's own clean-up never got to. Kept when Glance holds it.
  if (patched('rbd-direct-discard')) {
    saga.add('remove the direct snapshot unless Glance holds it', () => host.restore.discardDirectSnapshot({ description, imageId: ctx.imageId }));
  }
  const outcome = await progress.step('direct_snapshot', () => host.upload.directSnapshot({ domainName: instance.domainName, mode, description, imageId: ctx.imageId }));
  if (!outcome.done) {
    log.warn('performing standard snapshot because direct snapshot failed', { reason: outcome.reason });
    return null;
  }
  await progress.step('task_state_uploading', () =>
    control.setTaskState({ instanceUuid: instance.uuid, taskState: 'image_uploading', expected: ['image_pending_upload', null] }),
  );
  progress.state.bytesDone = 0;
  const { quiesced, freezeWindowMs, quiesceError } = outcome;
  return { uploaded: outcome.image, quiesce: { quiesced, freezeWindowMs, ...(quiesceError !== undefined ? { quiesceError } : {}) }, dataPath: 'rbd-direct' };
}
