// Timeouts and retries per activity. The host may be away for a long time (a dead host agent is
// waited for, not given up on), so host activities have no schedule-to-start limit once the guest
// has been touched, and restoring the guest is retried for as long as it takes.
import { ApplicationFailure, proxyActivities, proxyLocalActivities, type ActivityOptions } from '@temporalio/workflow';
import { CONTROL_TASK_QUEUE, ErrorTypes, HostNameSchema, hostTaskQueue, type ControlActivities, type HostActivities } from '../contract';

const backoff = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;

// Short start-to-close limits: a step held by a killed worker is retried soon (a restarted worker
// hands its predecessor's attempts back at once, see src/workers/orphaned-activities.ts).
export const controlActivities = proxyActivities<ControlActivities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '20 seconds',
  retry: backoff,
});

/**
 * The same control steps as local activities on the workflow's own (control) worker: a marker in
 * the history instead of a scheduled task and a workflow task per step. Each step keeps its name.
 */
export const localControlActivities = proxyLocalActivities<ControlActivities>({
  startToCloseTimeout: '20 seconds',
  retry: backoff,
});

export type ControlProxies = typeof controlActivities;

/**
 * Backup rotation and retention's prune on the control queue as a scheduled activity, not a local one: it deletes one
 * image after another (each delete collects chunks), so it heartbeats and may take minutes. A worker
 * killed in the middle is noticed by the heartbeat and the rotation runs again, listing afresh.
 */
export const rotationActivities = proxyActivities<Pick<ControlActivities, 'rotateBackups' | 'pruneBackups'>>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: backoff,
});

/** Control steps that wait on Cinder (a snapshot becoming available or deletable): long, heartbeating. */
export const cinderWaitActivities = proxyActivities<Pick<ControlActivities, 'awaitVolumeSnapshots' | 'deleteVolumeSnapshots'>>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { ...backoff, maximumAttempts: 10 },
});

export interface HostActivityProxies {
  /** read-only steps before the guest is touched: give up if the host stays away for 30 min */
  inspect: Pick<HostActivities, 'getDomainPowerState' | 'describeDomain' | 'probeLiveSnapshot'>;
  prepare: Pick<HostActivities, 'prepareColdSnapshot'>;
  extract: Pick<HostActivities, 'extractSnapshot' | 'openSnapshotExport'>;
  restore: Pick<HostActivities, 'restoreGuest' | 'removeSnapshotWorkDir' | 'closeSnapshotExport' | 'retainCheckpoints' | 'closeExportAndRetain' | 'discardDirectSnapshot'>;
  upload: Pick<HostActivities, 'uploadSnapshot' | 'streamSnapshot' | 'directSnapshot'>;
  /** the one-point cut of a volume-backed instance's volumes; the guest is frozen only inside it */
  volumes: Pick<HostActivities, 'snapshotVolumes' | 'thawGuest'>;
}

export function hostActivities(host: string): HostActivityProxies {
  // A thrown non-Temporal error would fail the workflow task over and over; a bad host fails the run.
  if (!HostNameSchema.safeParse(host).success) throw ApplicationFailure.nonRetryable(`instance host ${JSON.stringify(host)} is not a valid host name`, ErrorTypes.InvalidInput);
  const taskQueue = hostTaskQueue(host);
  const onHost = (options: Omit<ActivityOptions, 'taskQueue'>): ActivityOptions => ({ taskQueue, ...options });
  return {
    inspect: proxyActivities(onHost({ scheduleToStartTimeout: '30 minutes', startToCloseTimeout: '20 seconds', retry: { ...backoff, maximumAttempts: 10 } })),
    prepare: proxyActivities(onHost({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '15 seconds', retry: { ...backoff, maximumAttempts: 5 } })),
    extract: proxyActivities(onHost({ startToCloseTimeout: '2 hours', heartbeatTimeout: '15 seconds', retry: { ...backoff, maximumAttempts: 5 } })),
    restore: proxyActivities(onHost({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '15 seconds', retry: backoff })),
    volumes: proxyActivities(onHost({ startToCloseTimeout: '5 minutes', heartbeatTimeout: '15 seconds', retry: { ...backoff, maximumAttempts: 5 } })),
    upload: proxyActivities(onHost({ startToCloseTimeout: '12 hours', heartbeatTimeout: '15 seconds', retry: { ...backoff, maximumInterval: '30 seconds', maximumAttempts: 5 } })),
  };
}
