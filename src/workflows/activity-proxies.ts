// Timeouts and retries per activity. The host may be away for a long time (a dead host agent is
// waited for, not given up on), so host activities have no schedule-to-start limit once the guest
// has been touched, and restoring the guest is retried for as long as it takes.
import { ApplicationFailure, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import { CONTROL_TASK_QUEUE, ErrorTypes, HostNameSchema, hostTaskQueue, type ControlActivities, type HostActivities } from '../contract';

const backoff = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;

export const controlActivities = proxyActivities<ControlActivities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: backoff,
});

export interface HostActivityProxies {
  /** read-only steps before the guest is touched: give up if the host stays away for 30 min */
  inspect: Pick<HostActivities, 'getDomainPowerState' | 'describeDomain' | 'probeLiveSnapshot'>;
  prepare: Pick<HostActivities, 'prepareColdSnapshot'>;
  extract: Pick<HostActivities, 'extractSnapshot'>;
  restore: Pick<HostActivities, 'restoreGuest' | 'removeSnapshotWorkDir'>;
  upload: Pick<HostActivities, 'uploadSnapshot'>;
}

export function hostActivities(host: string): HostActivityProxies {
  // A thrown non-Temporal error would fail the workflow task over and over; a bad host fails the run.
  if (!HostNameSchema.safeParse(host).success) throw ApplicationFailure.nonRetryable(`instance host ${JSON.stringify(host)} is not a valid host name`, ErrorTypes.InvalidInput);
  const taskQueue = hostTaskQueue(host);
  const onHost = (options: Omit<ActivityOptions, 'taskQueue'>): ActivityOptions => ({ taskQueue, ...options });
  return {
    inspect: proxyActivities(onHost({ scheduleToStartTimeout: '30 minutes', startToCloseTimeout: '2 minutes', retry: { ...backoff, maximumAttempts: 10 } })),
    prepare: proxyActivities(onHost({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '30 seconds', retry: { ...backoff, maximumAttempts: 5 } })),
    extract: proxyActivities(onHost({ startToCloseTimeout: '2 hours', heartbeatTimeout: '30 seconds', retry: { ...backoff, maximumAttempts: 5 } })),
    restore: proxyActivities(onHost({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '30 seconds', retry: backoff })),
    upload: proxyActivities(onHost({ startToCloseTimeout: '6 hours', heartbeatTimeout: '30 seconds', retry: { ...backoff, maximumInterval: '30 seconds', maximumAttempts: 5 } })),
  };
}
