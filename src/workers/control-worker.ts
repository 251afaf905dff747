// Workflows and the control activities (instance store, image records, notifications) on
// `snapshot-control`. Any number of control workers may poll the queue against one database.
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createControlActivities, type ControlActivityDeps } from '../activities/control-activities';
import { TestBarrier } from '../host/test-barrier';
import type { ImageClient } from '../images';
import type { SnapshotMetrics } from '../observability';
import type { InstanceStore } from '../store';
import { CONTROL_TASK_QUEUE } from '../workflows/snapshot-contract';

export interface ControlWorkerOptions {
  connection: NativeConnection;
  store: InstanceStore;
  images: ImageClient;
  createImageRecord: ControlActivityDeps['createImageRecord'];
  log: Logger;
  taskQueue?: string;
  /** test-only: a SNAP_TEST_BARRIER_DIR that holds setTaskState open (off when unset) */
  testBarrierDir?: string;
  metrics?: SnapshotMetrics;
}

export async function createControlWorker(options: ControlWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    taskQueue: options.taskQueue ?? CONTROL_TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: createControlActivities({
      store: options.store,
      images: options.images,
      createImageRecord: options.createImageRecord,
      log: options.log,
      barrier: options.testBarrierDir ? new TestBarrier(options.testBarrierDir) : undefined,
      metrics: options.metrics,
    }),
  });
}
