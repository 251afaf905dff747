// One per hypervisor: polls `snapshot-host-<host>` and runs every activity that touches libvirt or
// the extracted file, and reports the host's domains to the control side.
import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createHostActivities } from '../activities/host-activities';
import type { HostConfig } from '../host/host-config';
import { LibvirtSession } from '../host/libvirt-session';
import { SnapshotWorkDirs } from '../host/snapshot-workdir';
import { GlanceHttpClient, type ImageClient } from '../images/client';
import { workerVolumeAccess, type CinderForProject } from '../cinder';
import { serviceTokenSource } from '../auth';
import type { SnapshotMetrics } from '../observability';
import { hostTaskQueue } from '../contract';
import { holdHostActivitiesAtBarriers, holdLibvirtAtBarriers } from '../fault-points/activity-barriers';
import type { StepBarrier } from '../fault-points/step-barrier';
import { startInventoryReporter } from './inventory-reporter';
import { signallingTransferReporter } from './transfer-reporter';
import { workerIdentity } from './orphaned-activities';

export interface HostWorkerOptions {
  config: HostConfig;
  connection: NativeConnection;
  client: Client;
  log: Logger;
  images?: ImageClient;
  /** Cinder in a project (default: from SNAP_VOLUME_URL and the Keystone settings in the environment) */
  cinder?: CinderForProject;
  metrics?: SnapshotMetrics;
  /** a fault-injection point (SNAP_TEST_BARRIER_DIR, off when absent): holds each step open so a fault test lands inside it */
  stepBarrier?: StepBarrier;
  /** the Temporal worker identity (default workerIdentity('host-worker')) */
  identity?: string;
}

export interface HostWorker {
  worker: Worker;
  session: LibvirtSession;
  workDirs: SnapshotWorkDirs;
  identity: string;
  /** the activity types this worker runs */
  activityTypes: ReadonlySet<string>;
  reportInventory(): Promise<number>;
  /** runs until shutdown() or a shutdown signal; closes the libvirt session after draining */
  run(): Promise<void>;
  shutdown(): void;
}

export async function createHostWorker(options: HostWorkerOptions): Promise<HostWorker> {
  const { config, log } = options;
  const session = new LibvirtSession(config.libvirtUri, config.libvirtSocket ? { socketPath: config.libvirtSocket } : {}, (err) =>
    log.warn({ err, libvirt: config.libvirtUri }, 'libvirt event dropped: it could not be decoded'),
  );
  const workDirs = new SnapshotWorkDirs(config.snapshotsDir);
  const activities = createHostActivities({
    config,
    session: options.stepBarrier ? holdLibvirtAtBarriers(session, options.stepBarrier) : session,
    workDirs,
    images: options.images ?? new GlanceHttpClient(config.imageUrl, serviceTokenSource(config.imageToken)),
    transfer: signallingTransferReporter(options.client),
    metrics: options.metrics,
    cinder: options.cinder ?? workerVolumeAccess(config.volumeUrl, config.imageToken)?.cinder,
  });
  const identity = options.identity ?? workerIdentity('host-worker');
  const worker = await Worker.create({
    connection: options.connection,
    identity,
    taskQueue: hostTaskQueue(config.host),
    activities: options.stepBarrier ? holdHostActivitiesAtBarriers(activities, options.stepBarrier) : activities,
    // restore and inspection steps must not queue behind the heavy ones, which have their own limits
    maxConcurrentActivityTaskExecutions: config.maxConcurrentSnapshots * 2,
  });
  const inventory = startInventoryReporter({ client: options.client, session, host: config.host, defaultProject: config.defaultProject, intervalMs: config.inventoryIntervalMs, log });
  return {
    worker,
    session,
    workDirs,
    identity,
    activityTypes: new Set(Object.keys(activities)),
    reportInventory: inventory.reportNow,
    async run() {
      try {
        await worker.run();
      } finally {
        inventory.stop();
        // A close answers before its work dir is gone: a clean stop leaves none behind for the sweep.
        await workDirs.settled();
        await session.close();
      }
    },
    shutdown: () => worker.shutdown(),
  };
}
