// Workflows and the control activities (instance store, image records, notifications) on
// `snapshot-control`. Any number of control workers may poll the queue against one database.
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createControlActivities, type ControlActivityDeps } from '../activities/control-activities';
import type { ImageClient } from '../images/client';
import type { SnapshotMetrics } from '../observability';
import type { InstanceStore } from '../store';
import { CONTROL_TASK_QUEUE } from '../contract';
import { workerIdentity } from './orphaned-activities';
import { holdControlActivitiesAtBarriers } from '../fault-points/activity-barriers';
import type { StepBarrier } from '../fault-points/step-barrier';

export interface ControlWorkerOptions {
  connection: NativeConnection;
  store: InstanceStore;
  images: ImageClient;
  createImageRecord: ControlActivityDeps['createImageRecord'];
  cinder?: ControlActivityDeps['cinder'];
  volumeSnapshotTimeoutMs?: ControlActivityDeps['volumeSnapshotTimeoutMs'];
  releaseTrust?: ControlActivityDeps['releaseTrust'];
  log: Logger;
  taskQueue?: string;
  /** a fault-injection point (SNAP_TEST_BARRIER_DIR, off when absent): holds setTaskState open so a fault test lands inside it */
  stepBarrier?: StepBarrier;
  metrics?: SnapshotMetrics;
  /** the Temporal worker identity (default workerIdentity('control-worker')) */
  identity?: string;
}

export interface ControlWorker {
  worker: Worker;
  identity: string;
  activityTypes: ReadonlySet<string>;
}

export async function createControlWorker(options: ControlWorkerOptions): Promise<ControlWorker> {
  const activities = createControlActivities({
    store: options.store,
    images: options.images,
    createImageRecord: options.createImageRecord,
    cinder: options.cinder,
    volumeSnapshotTimeoutMs: options.volumeSnapshotTimeoutMs,
    releaseTrust: options.releaseTrust,
    log: options.log,
    metrics: options.metrics,
  });
  const identity = options.identity ?? workerIdentity('control-worker');
  const worker = await Worker.create({
    connection: options.connection,
    identity,
    taskQueue: options.taskQueue ?? CONTROL_TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: options.stepBarrier ? holdControlActivitiesAtBarriers(activities, options.stepBarrier) : activities,
    // A killed worker's sticky queue is abandoned quickly: its runs move to the normal queue.
    stickyQueueScheduleToStartTimeout: '3s',
  });
  return { worker, identity, activityTypes: new Set(Object.keys(activities)) };
}
