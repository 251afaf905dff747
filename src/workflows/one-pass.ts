// The one-pass data path (issue: one pass from guest disk to image): the seed's extract becomes the
// point-in-time export (a backup job for a running guest, a read-only NBD export of the stopped
// disk), its upload becomes the stream from that export into the image service, and a closing step
// ends the export. A cold guest stays down until its disk has been read, then comes back; or, where
// the host restarts it with a backup job holding the save's point in time, before the stream.
// Each step re-derives its preconditions, so a run reset after its compensations still completes.
import { patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  ErrorTypes,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  type ChainPlan,
  type CheckpointRetention,
  type SnapshotChainFacts,
  type StreamedImage,
  type UploadedImage,
} from '../contract';
import { ImageIdKey } from '../temporal/search-attributes';
import { failureType } from './failure-type';
import { attemptDirectSnapshot } from './direct-snapshot';
import type { ExtractContext, ExtractOutcome, QuiesceFacts } from './extract-context';

const COLD_REASON = 'a cold snapshot reads the stopped disk whole: no backup job, so no checkpoint to read changes from';

export async function streamOnePass(ctx: ExtractContext): Promise<ExtractOutcome> {
  const { instance, description, mode, powerState, host, control, progress, saga } = ctx;
  const instanceUuid = instance.uuid;
  const domainName = instance.domainName;
  const workDirKey = workflowInfo().runId;
  // Added with incremental snapshots: runs recorded before it replay without a chain.
  const chained = patched('incremental-chain');
  let plan: ChainPlan | undefined;
  const exportInput = () => ({ domainName, workDirKey, mode, description, ...(plan !== undefined ? { chain: plan } : {}) });
  const touchesGuest = mode === 'cold' && (powerState === POWER_STATE_RUNNING || powerState === POWER_STATE_PAUSED);
  // A running guest may come back before the stream (the host restarts it with a backup job on its
  // disk): only where the host says it may, and not in histories recorded before it.
  const restartsGuest = touchesGuest && powerState === POWER_STATE_RUNNING && description.coldRestart === true && patched('cold-restart-with-job');
  const restore = () => host.restore.restoreGuest({ domainName, priorPowerState: powerState, ...(restartsGuest ? { resumePaused: true } : {}) });
  const close = () => host.restore.closeSnapshotExport({ domainName, workDirKey });
  let recorded = false;
  // The compensation's close: a failed live run's point in time in the disk's storage (an RBD
  // snapshot) goes too, unless the chain recorded it. An input of the same activity, so recorded
  // histories replay unchanged.
  const closeAfterFailure = () => host.restore.closeSnapshotExport({ domainName, workDirKey, ...(chained && mode === 'live' && !recorded ? { discardPointOf: description } : {}) });
  let restored = false;
  let closed = false;
  let retained: CheckpointRetention | undefined;

  let streamed: StreamedImage;
  let replacedImageId: string | undefined;
  try {
    if (touchesGuest) {
      // Registered before the call: a managedSave that happened in an attempt that then crashed must still be undone.
      saga.add('restore guest', async () => (restored ? undefined : restore()));
    }
    // After the restore, so that it runs first: ends the export, then removes the work dir.
    saga.add('close export', closeAfterFailure);
    if (touchesGuest) {
      await progress.step('prepare_cold', () => host.prepare.prepareColdSnapshot({ domainName, powerState }));
    }
    await progress.step('task_state_pending_upload', () =>
      control.setTaskState({ instanceUuid, taskState: 'image_pending_upload', expected: [ctx.claimedState, null] }),
    );
    // Returned from inside the try: the finally below still brings a cold guest back.
    const direct = await attemptDirectSnapshot(ctx);
    if (direct !== null) return direct;
    if (chained && mode === 'live') plan = await progress.step('plan_chain', () => control.planChain({ instanceUuid }));
    const opened = await progress.step('extract', () => host.extract.openSnapshotExport({ ...exportInput(), ...(restartsGuest ? { restartSavedGuest: true } : {}) }));
    if (opened.guestResumed === true) {
      // The save's point in time is held by the export's job: the guest is back (its devices now), the stream follows.
      await progress.step('restore_guest', restore);
      restored = true;
    }
    // What the stream carries: the guest data (the changed extents of an incremental) to a composing store.
    progress.state.bytesTotal = opened.changedBytes ?? opened.imageSize;
    await progress.step('task_state_uploading', () =>
      control.setTaskState({ instanceUuid, taskState: 'image_uploading', expected: ['image_pending_upload', null] }),
    );
    let imageId = ctx.imageId;
    streamed = await progress.step('upload', async () => {
      try {
        return await host.upload.streamSnapshot({ ...exportInput(), imageId });
      } catch (err) {
        if (failureType(err) !== ErrorTypes.ImageNotFound) throw err;
        // The run's image was deleted (a replayed run whose compensation deleted it): a new one.
        const created = await control.createSnapshotImage({ instanceUuid, name: ctx.name, metadata: ctx.metadata, ...(ctx.backup !== undefined ? { backupType: ctx.backup.backupType } : {}) });
        replacedImageId = imageId;
        imageId = created.imageId;
        const replacement = imageId;
        saga.add('delete replacement image unless active', () => control.deleteImageUnlessActive({ imageId: replacement }));
        progress.state.imageId = replacement;
        upsertSearchAttributes([{ key: ImageIdKey, value: replacement }]);
        return host.upload.streamSnapshot({ ...exportInput(), imageId: replacement });
      }
    });
    progress.state.bytesDone = streamed.changedBytes ?? streamed.size;
    // A live run that keeps a checkpoint closes and retains in one host step (one round trip, one
    // domain lookup; the work dir goes after the answer), not in histories recorded before it. A
    // cold guest is never kept waiting for a retention (and a cold run keeps no checkpoint).
    const keep = chained ? streamed.checkpoint : undefined;
    if (keep !== undefined && !touchesGuest && patched('close-and-retain')) {
      retained = await progress.step('close_and_retain', () => host.restore.closeExportAndRetain({ domainName, workDirKey, keep, description }));
    } else {
      await progress.step('close_export', close);
    }
    closed = true;
  } finally {
    // Nova's `finally:` around the extract: the guest comes back whatever happened above, once
    // nothing holds its disk open (QEMU would refuse the disk's write lock).
    if (touchesGuest && !restored) {
      if (!closed) await progress.step('close_export', close);
      await progress.step('restore_guest', restore);
      restored = true;
    }
  }
  const chain = chained ? await recordChain(ctx, streamed, retained) : undefined;
  recorded = true;
  const quiesce: QuiesceFacts = { quiesced: streamed.quiesced, freezeWindowMs: streamed.freezeWindowMs };
  if (streamed.quiesceError !== undefined) quiesce.quiesceError = streamed.quiesceError;
  const uploaded: UploadedImage = { imageId: streamed.imageId, status: streamed.status, size: streamed.size, checksum: streamed.checksum };
  return {
    uploaded,
    quiesce,
    dataPath: streamed.dataPath,
    resumedFrom: streamed.resumedFrom,
    logicalDigest: streamed.logicalDigest,
    ...(replacedImageId !== undefined ? { replacedImageId } : {}),
    ...(chain !== undefined ? { chain } : {}),
  };
}

/**
 * After the export closed: older checkpoints go (retention, unless the close did it: `retained`),
 * and the snapshot joins the instance's chain with what it was and why, so the next one knows what
 * it may build on.
 */
async function recordChain(ctx: ExtractContext, streamed: StreamedImage, retained: CheckpointRetention | undefined): Promise<SnapshotChainFacts> {
  const { instance, description, host, control, progress } = ctx;
  const facts: SnapshotChainFacts = {
    kind: streamed.kind ?? 'full',
    ...(streamed.kind === undefined ? { fullReason: COLD_REASON } : {}),
    ...(streamed.fullReason !== undefined ? { fullReason: streamed.fullReason } : {}),
    ...(streamed.parentImageId !== undefined ? { parentImageId: streamed.parentImageId } : {}),
    ...(streamed.checkpoint !== undefined ? { checkpoint: streamed.checkpoint } : {}),
    ...(streamed.diskIdentity !== undefined ? { diskIdentity: streamed.diskIdentity } : {}),
    ...(streamed.changedBytes !== undefined ? { changedBytes: streamed.changedBytes } : {}),
  };
  let checkpointXml: string | null = retained?.checkpointXml ?? null;
  const keep = facts.checkpoint;
  if (keep !== undefined && retained === undefined) {
    checkpointXml = (await progress.step('retain_checkpoints', () => host.restore.retainCheckpoints({ domainName: instance.domainName, keep, description }))).checkpointXml;
  }
  await progress.step('record_chain', () =>
    control.recordChain({ ...facts, instanceUuid: instance.uuid, imageId: streamed.imageId, host: instance.host, virtualSize: description.virtualSize, checkpointXml }),
  );
  return facts;
}
