// Nova's snapshot path (ComputeManager.snapshot_instance → _snapshot_instance → LibvirtDriver.snapshot)
// as a durable workflow. Each step is a named activity; control steps run on `snapshot-control`,
// everything that touches libvirt or the extracted file on the instance's own host queue.
import {
  ApplicationFailure,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  log,
  ActivityFailure,
  CancellationScope,
  patched,
} from '@temporalio/workflow';
import {
  ErrorTypes,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  progressQuery,
  SnapshotInputSchema,
  transferProgressSignal,
  type DomainDescription,
  type ExtractedSnapshot,
  type PowerState,
  type SnapshotInput,
  type SnapshotInstanceInfo,
  type SnapshotMode,
  type SnapshotProgress,
  type SnapshotResult,
  type SnapshotStep,
  type UploadedImage,
} from '../contract';
import { ComputeHostKey, ImageIdKey, InstanceUuidKey, SnapshotStepKey } from '../temporal/search-attributes';
import { controlActivities as control, hostActivities, type HostActivityProxies } from './activity-proxies';
import { Saga } from './saga';
import { issueText } from '../config/validation';

const VANISHED = new Set<string>([ErrorTypes.InstanceNotFound, ErrorTypes.UnexpectedDeletingTaskState, ErrorTypes.InstanceNotRunning]);

function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

class Progress {
  readonly state: SnapshotProgress = { step: 'starting', bytesDone: 0, bytesTotal: 0, steps: {} };

  /** Runs one step: the search attribute and the query show it while it runs, its duration is kept. */
  async step<T>(step: SnapshotStep, run: () => Promise<T>): Promise<T> {
    this.enter(step);
    const started = Date.now();
    try {
      return await run();
    } finally {
      this.state.steps[step] = (this.state.steps[step] ?? 0) + (Date.now() - started);
    }
  }

  enter(step: SnapshotStep): void {
    this.state.step = step;
    upsertSearchAttributes([{ key: SnapshotStepKey, value: step }]);
  }
}

export async function snapshotInstance(rawInput: SnapshotInput): Promise<SnapshotResult> {
  const parsed = SnapshotInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid snapshot input: ${issueText(parsed.error)}`, ErrorTypes.InvalidInput);
  }
  const input = parsed.data;
  const progress = new Progress();
  setHandler(progressQuery, () => progress.state);
  setHandler(transferProgressSignal, (p) => {
    progress.state.bytesDone = p.bytesDone;
    progress.state.bytesTotal = p.bytesTotal;
  });
  upsertSearchAttributes([{ key: InstanceUuidKey, value: input.instanceUuid }]);

  const saga = new Saga();
  try {
    const result = await runSnapshot(input, progress, saga);
    progress.enter('done');
    return result;
  } catch (err) {
    const vanished = VANISHED.has(failureType(err) ?? '');
    progress.state.error = vanished ? 'Instance disappeared during snapshot' : err instanceof Error ? err.message : String(err);
    const failedStep = progress.state.step;
    // Added after the first histories were recorded: runs started before it replay without it.
    if (patched('snapshot-error-notification')) {
      await CancellationScope.nonCancellable(() =>
        control
          .notifySnapshot({ instanceUuid: input.instanceUuid, imageId: progress.state.imageId, event: 'snapshot.error', step: failedStep, error: progress.state.error })
          .catch(() => undefined),
      );
    }
    progress.enter('compensating');
    const failures = await saga.compensate();
    progress.enter('failed');
    if (failures.length > 0) log.error('snapshot compensations incomplete', { failures });
    throw err;
  }
}

async function runSnapshot(input: SnapshotInput, progress: Progress, saga: Saga): Promise<SnapshotResult> {
  const { instanceUuid } = input;
  const startedAt = Date.now();
  let imageId = input.imageId;
  if (imageId === undefined) {
    const created = await progress.step('create_image', () =>
      control.createSnapshotImage({ instanceUuid, name: input.name, metadata: input.metadata ?? {} }),
    );
    imageId = created.imageId;
  }
  const image = imageId;
  progress.state.imageId = image;
  upsertSearchAttributes([{ key: ImageIdKey, value: image }]);
  saga.add('delete image unless active', () => control.deleteImageUnlessActive({ imageId: image }));

  // Started by the API the instance is image_snapshot_pending; started by ops it has no task yet.
  // The reset is registered first: the API's image_snapshot_pending must not outlive a failed run.
  saga.add('reset task_state', () => control.resetTaskState({ instanceUuid }));
  const expected = input.imageId === undefined ? [null] : ['image_snapshot_pending' as const];
  const instance = await progress.step('task_state_image_snapshot', () =>
    control.setTaskState({ instanceUuid, taskState: 'image_snapshot', expected }),
  );
  progress.state.host = instance.host;
  upsertSearchAttributes([{ key: ComputeHostKey, value: instance.host }]);
  const host = hostActivities(instance.host);

  const powerState = await progress.step('power_state', async () => {
    const current = await host.inspect.getDomainPowerState({ domainName: instance.domainName, instanceUuid });
    await control.savePowerState({ instanceUuid, powerState: current });
    if (current !== POWER_STATE_RUNNING) log.warn('trying to snapshot a non-running instance', { state: current, expected: POWER_STATE_RUNNING });
    return current;
  });
  await progress.step('notify_start', () => control.notifySnapshot({ instanceUuid, imageId: image, event: 'snapshot.start' }));

  const description = await progress.step('lookup_domain', () => host.inspect.describeDomain({ domainName: instance.domainName, instanceUuid }));
  const mode = await progress.step('choose_mode', () => chooseMode(host, instance.domainName, description, powerState));
  progress.state.mode = mode;

  const { uploaded, quiesce } = await extractAndUpload({ instance, imageId: image, description, mode, powerState, host, progress, saga });

  await progress.step('task_state_none', () => control.setTaskState({ instanceUuid, taskState: null, expected: ['image_uploading'] }));
  await progress.step('notify_end', () =>
    control.notifySnapshot({ instanceUuid, imageId: image, event: 'snapshot.end', mode, durationMs: Date.now() - startedAt, ...quiesce }),
  );
  return { imageId: image, status: uploaded.status, size: uploaded.size, checksum: uploaded.checksum, mode, ...quiesce, steps: progress.state.steps };
}

/** Live when the host can (version, source type, encryption, config), the guest runs, and the block-job probe passes. */
async function chooseMode(host: HostActivityProxies, domainName: string, description: DomainDescription, powerState: PowerState): Promise<SnapshotMode> {
  // A paused guest is snapshotted cold: live block copy of paused guests hung on some QEMU (LP#1741667);
  // a shut-off guest has nothing to copy live.
  if (!description.liveCapable || powerState !== POWER_STATE_RUNNING) return 'cold';
  const probe = await host.inspect.probeLiveSnapshot({ domainName, diskTarget: description.diskTarget });
  return probe ? 'live' : 'cold';
}

interface ExtractContext {
  instance: SnapshotInstanceInfo;
  imageId: string;
  description: DomainDescription;
  mode: SnapshotMode;
  powerState: PowerState;
  host: HostActivityProxies;
  progress: Progress;
  saga: Saga;
}

type QuiesceFacts = Pick<ExtractedSnapshot, 'quiesced' | 'freezeWindowMs' | 'quiesceError'>;

async function extractAndUpload(ctx: ExtractContext): Promise<{ uploaded: UploadedImage; quiesce: QuiesceFacts }> {
  const { instance, description, mode, powerState, host, progress, saga } = ctx;
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
      control.setTaskState({ instanceUuid, taskState: 'image_pending_upload', expected: ['image_snapshot'] }),
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
  return { uploaded, quiesce };
}
