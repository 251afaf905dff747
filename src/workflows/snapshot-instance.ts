// Nova's snapshot path (ComputeManager.snapshot_instance → _snapshot_instance → LibvirtDriver.snapshot)
// as a durable workflow. Each step is a named activity; control steps run on `snapshot-control`,
// everything that touches libvirt or the extracted file on the instance's own host queue.
import {
  ApplicationFailure,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  log,
  CancellationScope,
  patched,
} from '@temporalio/workflow';
import {
  ErrorTypes,
  isVolumeBacked,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  progressQuery,
  SnapshotInputSchema,
  transferProgressSignal,
  type DomainDescription,
  type ExtractedSnapshot,
  type PowerState,
  type SnapshotInput,
  type SnapshotMode,
  type SnapshotResult,
  type TaskState,
  VOLUME_BACKED_BACKUP_REFUSAL,
} from '../contract';
import { ComputeHostKey, ImageIdKey, InstanceUuidKey } from '../temporal/search-attributes';
import { failureText, failureType } from './failure-type';
import { Progress } from './progress';
import type { ExtractContext, ExtractOutcome, QuiesceFacts } from './extract-context';
import { streamOnePass } from './one-pass';
import { controlActivities, hostActivities, localControlActivities, rotationActivities, type ControlProxies, type HostActivityProxies } from './activity-proxies';
import { Saga } from './saga';
import { snapshotVolumeBacked } from './volume-backed';
import { issueText } from '../config/validation';

const VANISHED = new Set<string>([ErrorTypes.InstanceNotFound, ErrorTypes.UnexpectedDeletingTaskState, ErrorTypes.InstanceNotRunning]);


export async function snapshotInstance(rawInput: SnapshotInput): Promise<SnapshotResult> {
  const parsed = SnapshotInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid snapshot input: ${issueText(parsed.error)}`, ErrorTypes.InvalidInput);
  }
  const input = parsed.data;
  // Runs recorded before the short history (local control steps, inspection in parallel, the
  // search attribute at phases only) replay the long one.
  const short = patched('short-history');
  const control: ControlProxies = short ? localControlActivities : controlActivities;
  const progress = new Progress(short);
  setHandler(progressQuery, () => progress.state);
  setHandler(transferProgressSignal, (p) => {
    progress.state.bytesDone = p.bytesDone;
    progress.state.bytesTotal = p.bytesTotal;
  });
  const knownImage = short && input.imageId !== undefined ? [{ key: ImageIdKey, value: input.imageId }] : [];
  upsertKeywords(short, [{ key: InstanceUuidKey, value: input.instanceUuid }, ...knownImage]);

  const saga = new Saga();
  try {
    const result = await runSnapshot(input, { progress, saga, control, short, imageIdUpserted: knownImage.length > 0 });
    progress.enter('done');
    return result;
  } catch (err) {
    const vanished = VANISHED.has(failureType(err) ?? '');
    progress.state.error = vanished ? 'Instance disappeared during snapshot' : failureText(err);
    const failedStep = progress.state.step;
    // Added after the first histories were recorded: runs started before it replay without it.
    if (patched('snapshot-error-notification')) {
      await CancellationScope.nonCancellable(() =>
        control
          .notifySnapshot({ instanceUuid: input.instanceUuid, imageId: progress.state.imageId, event: 'snapshot.error', step: failedStep, error: progress.state.error, ...backupLabel(input) })
          .catch(() => undefined),
      );
    }
    progress.enter('compensating');
    const failures = await saga.compensate();
    progress.enter('failed');
    if (failures.length > 0) {
      log.error('snapshot compensations incomplete', { failures });
      // The operator reads what is left (e.g. a Cinder snapshot still `creating` while cinder-volume
      // is down) in the run's failure. Runs that failed so before this replay the bare error.
      if (patched('compensation-failures-named')) throw withCompensationFailures(err, failures);
    }
    throw err;
  }
}

/** The run's failure, of the same type, its message naming the clean-ups that did not finish. */
function withCompensationFailures(err: unknown, failures: readonly string[]): ApplicationFailure {
  return ApplicationFailure.create({
    message: `${failureText(err)}; not cleaned up: ${failures.join('; ')}`,
    type: failureType(err) ?? 'SnapshotFailed',
    nonRetryable: true,
    cause: err instanceof Error ? err : undefined,
  });
}

/**
 * Upserts keyword search attributes. In the short history only those whose value changes: the API
 * starts runs with the instance, host and image already set, and each upsert is a history event.
 */
function upsertKeywords(onlyChanged: boolean, pairs: { key: typeof InstanceUuidKey; value: string }[]): void {
  const current = workflowInfo().typedSearchAttributes;
  const changed = onlyChanged ? pairs.filter((p) => current.get(p.key) !== p.value) : pairs;
  if (changed.length > 0) upsertSearchAttributes(changed);
}

interface RunContext {
  progress: Progress;
  saga: Saga;
  control: ControlProxies;
  short: boolean;
  imageIdUpserted: boolean;
}

async function runSnapshot(input: SnapshotInput, run: RunContext): Promise<SnapshotResult> {
  const { progress, saga, control } = run;
  const { instanceUuid } = input;
  const startedAt = Date.now();
  let imageId = input.imageId;
  const backupType = backupLabel(input);
  if (imageId === undefined) {
    const schedule = input.backupScheduleId === undefined ? {} : { backupScheduleId: input.backupScheduleId };
    const created = await progress.step('create_image', () =>
      control.createSnapshotImage({ instanceUuid, name: input.name, metadata: input.metadata ?? {}, ...backupType, ...schedule }),
    );
    imageId = created.imageId;
  }
  const image = imageId;
  progress.state.imageId = image;
  if (!run.imageIdUpserted) upsertSearchAttributes([{ key: ImageIdKey, value: image }]);
  saga.add('delete image unless active', () => control.deleteImageUnlessActive({ imageId: image }));

  // Started by the API the instance is image_snapshot_pending (a backup: image_backup, which the
  // backup keeps, as Nova's _snapshot_instance runs with expected_task_state IMAGE_BACKUP); started
  // by ops it has no task yet. The reset is registered first: the API's state must not outlive a failed run.
  saga.add('reset task_state', () => control.resetTaskState({ instanceUuid }));
  const claimedState = input.backup === undefined ? 'image_snapshot' : 'image_backup';
  const apiState: TaskState = input.backup === undefined ? 'image_snapshot_pending' : 'image_backup';
  // null too for the API's runs: a run reset after its compensations finds task_state reset, and re-claims it.
  const expected: TaskState[] = input.imageId === undefined ? [null] : [apiState, null];
  const instance = await progress.step(input.backup === undefined ? 'task_state_image_snapshot' : 'task_state_image_backup', () =>
    control.setTaskState({ instanceUuid, taskState: claimedState, expected }),
  );
  progress.state.host = instance.host;
  upsertKeywords(run.short, [{ key: ComputeHostKey, value: instance.host }]);
  const host = hostActivities(instance.host);

  const readPowerState = () =>
    progress.step('power_state', async () => {
      const current = await host.inspect.getDomainPowerState({ domainName: instance.domainName, instanceUuid });
      await control.savePowerState({ instanceUuid, powerState: current });
      if (current !== POWER_STATE_RUNNING) log.warn('trying to snapshot a non-running instance', { state: current, expected: POWER_STATE_RUNNING });
      return current;
    });
  const notifyStart = () => progress.step('notify_start', () => control.notifySnapshot({ instanceUuid, imageId: image, event: 'snapshot.start', ...backupType }));
  const lookupDomain = () => progress.step('lookup_domain', () => host.inspect.describeDomain({ domainName: instance.domainName, instanceUuid }));
  // _action_create_image's other branch: the root disk is a Cinder volume (histories from before volumes never branch).
  if (isVolumeBacked(instance)) {
    // Nova's backup() refuses a volume-backed instance; the API does too, so a backup run gets here
    // from a schedule made before the refusal or an instance whose root disk became a volume. Nothing
    // is made in Cinder; the saga deletes the image. Runs recorded before it replay the volume path.
    if (input.backup !== undefined && patched('no-volume-backed-backup')) {
      const { trustId } = input;
      if (trustId !== undefined) saga.add('release trust', () => control.releaseTrust({ trustId }));
      throw ApplicationFailure.nonRetryable(VOLUME_BACKED_BACKUP_REFUSAL, ErrorTypes.VolumeBackedBackup);
    }
    const current = await readPowerState();
    await notifyStart();
    return snapshotVolumeBacked({ instance, imageId: image, name: input.name, trustId: input.trustId, powerState: current, host, control, progress, saga, startedAt });
  }
  let powerState: PowerState;
  let description: DomainDescription;
  if (run.short) {
    // Both only read the host; side by side they cost one round trip.
    [powerState, description] = await Promise.all([readPowerState(), lookupDomain()]);
    await notifyStart();
  } else {
    powerState = await readPowerState();
    await notifyStart();
    description = await lookupDomain();
  }
  const mode = await progress.step('choose_mode', () => chooseMode(host, instance.domainName, description, powerState));
  progress.state.mode = mode;

  const ctx: ExtractContext = { instance, imageId: image, description, mode, powerState, host, control, progress, saga, name: input.name, metadata: input.metadata ?? {}, claimedState, ...(input.backup !== undefined ? { backup: input.backup } : {}) };
  // Descriptions recorded before the one-pass path have no backupCapable, and replay on block copy.
  const onePass = description.backupCapable === true && description.virtType !== 'lxc';
  const { uploaded, quiesce, dataPath, resumedFrom, logicalDigest, replacedImageId, chain } = onePass ? await streamOnePass(ctx) : await extractAndUpload(ctx);
  const finalImage = uploaded.imageId;

  await progress.step('task_state_none', () => control.setTaskState({ instanceUuid, taskState: null, expected: ['image_uploading', null] }));
  await progress.step('notify_end', () =>
    control.notifySnapshot({ instanceUuid, imageId: finalImage, event: 'snapshot.end', mode, durationMs: Date.now() - startedAt, ...quiesce, ...(chain !== undefined ? { chain } : {}), ...backupType }),
  );
  // Nova's backup_instance: _rotate_backups once the snapshot is done, never after a failed one.
  const backup = input.backup;
  const rotation = backup === undefined ? undefined : await progress.step('rotate_backups', () => rotationActivities.rotateBackups({ instanceUuid, imageId: finalImage, backupType: backup.backupType, rotation: backup.rotation }));
  // A schedule's retention (PBS's prune), after Nova's rotation; runs from before it never had one.
  const retention = backup?.retention;
  const prune =
    backup === undefined || retention === undefined || !patched('backup-retention')
      ? undefined
      : await progress.step('prune_backups', () => rotationActivities.pruneBackups({ instanceUuid, imageId: finalImage, backupType: backup.backupType, retention }));
  const result: SnapshotResult = { imageId: finalImage, status: uploaded.status, size: uploaded.size, checksum: uploaded.checksum, mode, ...quiesce, dataPath, steps: progress.state.steps };
  if (rotation !== undefined) result.rotation = rotation;
  if (prune !== undefined) result.prune = prune;
  if (resumedFrom !== undefined) result.resumedFrom = resumedFrom;
  if (logicalDigest !== undefined) result.logicalDigest = logicalDigest;
  if (replacedImageId !== undefined) result.replacedImageId = replacedImageId;
  if (chain !== undefined) {
    result.kind = chain.kind;
    if (chain.fullReason !== undefined) result.fullReason = chain.fullReason;
    if (chain.parentImageId !== undefined) result.parentImageId = chain.parentImageId;
    if (chain.changedBytes !== undefined) result.changedBytes = chain.changedBytes;
  }
  return result;
}

/** The backup_type a backup's notifications and image carry; nothing for a snapshot. */
function backupLabel(input: SnapshotInput): { backupType?: string } {
  return input.backup === undefined ? {} : { backupType: input.backup.backupType };
}

/** Live when the host can (version, source type, encryption, config), the guest runs, and the block-job probe passes. */
async function chooseMode(host: HostActivityProxies, domainName: string, description: DomainDescription, powerState: PowerState): Promise<SnapshotMode> {
  // A paused guest is snapshotted cold: live block copy of paused guests hung on some QEMU (LP#1741667);
  // a shut-off guest has nothing to copy live.
  if (!description.liveCapable || powerState !== POWER_STATE_RUNNING) return 'cold';
  const probe = await host.inspect.probeLiveSnapshot({ domainName, diskTarget: description.diskTarget });
  return probe ? 'live' : 'cold';
}

async function extractAndUpload(ctx: ExtractContext): Promise<ExtractOutcome> {
  const { instance, description, mode, powerState, host, control, progress, saga } = ctx;
  const instanceUuid = instance.uuid;
  const domainName = instance.domainName;
  const workDirKey = workflowInfo().runId;
  saga.add('remove snapshot work dir', () => host.restore.removeSnapshotWorkDir({ workDirKey }));
  const touchesGuest = mode === 'cold' && description.virtType !== 'lxc' && (powerState === POWER_STATE_RUNNING || powerState === POWER_STATE_PAUSED);
  const restore = () => host.restore.restoreGuest({ domainName, priorPowerState: powerState });
  let restored = false;

  let extracted: ExtractedSnapshot;
  try {
    if (touchesGuest) {
      // Registered before the call: a managedSave that happened in an attempt that then crashed must still be undone.
      saga.add('restore guest', async () => (restored ? undefined : restore()));
      await progress.step('prepare_cold', () => host.prepare.prepareColdSnapshot({ domainName, powerState }));
    }
    await progress.step('task_state_pending_upload', () =>
      control.setTaskState({ instanceUuid, taskState: 'image_pending_upload', expected: [ctx.claimedState] }),
    );
    extracted = await progress.step('extract', () => host.extract.extractSnapshot({ domainName, workDirKey, mode, description }));
  } finally {
    // Nova's `finally:` around the extract: the guest comes back whatever happened above.
    if (touchesGuest) {
      await progress.step('restore_guest', restore);
      restored = true;
    }
  }

  await progress.step('task_state_uploading', () =>
    control.setTaskState({ instanceUuid, taskState: 'image_uploading', expected: ['image_pending_upload'] }),
  );
  progress.state.bytesTotal = extracted.size;
  const uploaded = await progress.step('upload', () => host.upload.uploadSnapshot({ imageId: ctx.imageId, path: extracted.path, format: extracted.format }));
  progress.state.bytesDone = uploaded.size;
  await host.restore.removeSnapshotWorkDir({ workDirKey });
  // Histories recorded before the freeze window was reported carry no freezeWindowMs.
  const quiesce: QuiesceFacts = { quiesced: extracted.quiesced, freezeWindowMs: extracted.freezeWindowMs ?? null };
  if (extracted.quiesceError !== undefined) quiesce.quiesceError = extracted.quiesceError;
  return { uploaded, quiesce, dataPath: ctx.mode === 'live' ? 'block-copy' : 'convert' };
}
