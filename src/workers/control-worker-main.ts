// `tsx src/workers/control-worker-main.ts`: workflows and control activities on snapshot-control.
// Env: TEMPORAL_* (src/temporal/connection-config.ts), SNAP_STORE_* / SNAP_DATA_DIR (instance
// store), SNAP_IMAGE_URL and SNAP_IMAGE_TOKEN (an admin/service token for the image API),
// SNAP_RECONCILE_* (src/reconciler/reconcile-config.ts: the interrupted-snapshot clean-up),
// SNAP_VOLUME_URL and SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS (volume-backed snapshots' Cinder).
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { z } from 'zod';
import { ImageUrlSchema, parseEnv } from '../config/env';
import { createSnapshotImageRecord, GlanceHttpClient } from '../images/client';
import { serviceTokenSource } from '../auth';
import { VolumeSnapshotTimeoutSchema, VolumeUrlSchema, workerVolumeAccess } from '../cinder';
import { createLogger, logLevelFromEnv } from '../observability';
import { BackupSchedules } from '../temporal/backup-schedules';
import { reconcileConfigFromEnv, SnapshotReconciler, startReconcileLoop, type ReconcileLoop } from '../reconciler';
import { runMain } from '../process/run-main';
import { InstanceStore, storeConfigFromEnv } from '../store';
import { connectClient, connectWorker } from '../temporal/connect';
import { stepBarrierFromEnv } from '../fault-points/step-barrier';
import { WORKFLOW_TYPE } from '../contract';
import { createControlWorker } from './control-worker';
import { retryOrphanedActivities } from './orphaned-activities';
import { startBackupAgeRefresh } from './backup-age-refresh';
import { startWorkerMetrics } from './worker-metrics';

const ControlEnvSchema = z.object({
  SNAP_IMAGE_URL: ImageUrlSchema,
  SNAP_IMAGE_TOKEN: z.string().min(1).optional(),
  SNAP_VOLUME_URL: VolumeUrlSchema,
  SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS: VolumeSnapshotTimeoutSchema,
  /** what a backup run itself may take in each schedule's allowance (backup_schedule_max_age_seconds) */
  SNAP_BACKUP_RUN_ALLOWANCE_S: z.coerce.number().int().min(0).max(7 * 86_400).default(3600),
});

const log = createLogger({ name: 'control-worker', level: logLevelFromEnv() });

runMain(
  'control-worker',
  async () => {
    // Signals are handled by runMain so that the store closes after the worker drains.
    // SDK chatter (webpack output, state changes) below WARN stays out of the service logs.
    Runtime.install({ shutdownSignals: [], logger: new DefaultLogger('WARN') });
    const env = parseEnv(ControlEnvSchema, process.env, 'control worker');
    const reconcile = reconcileConfigFromEnv();
    const store = await InstanceStore.open(storeConfigFromEnv());
    const images = new GlanceHttpClient(env.SNAP_IMAGE_URL, serviceTokenSource(env.SNAP_IMAGE_TOKEN));
    const volumes = workerVolumeAccess(env.SNAP_VOLUME_URL, env.SNAP_IMAGE_TOKEN);
    const connection = await connectWorker();
    const { metrics, server: metricsServer } = await startWorkerMetrics('control-worker');
    const control = await createControlWorker({
      metrics,
      connection,
      store,
      images,
      cinder: volumes?.cinder,
      releaseTrust: volumes?.releaseTrust,
      volumeSnapshotTimeoutMs: env.SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS * 1000,
      log,
      stepBarrier: stepBarrierFromEnv(),
      // Runs started without an image (Temporal UI, CLI): the image belongs to the instance's project
      // (an ownerless instance's to the service's project, which only cloud admins see).
      createImageRecord: async (instance, name, metadata, backupType, imageId, backupScheduleId) => {
        const image = await createSnapshotImageRecord(images, instance, name, metadata, { owner: instance.projectId ?? undefined, backupType, id: imageId, backupScheduleId });
        return { imageId: image.id, status: image.status };
      },
    });
    const worker = control.worker;
    const running = worker.run();
    log.info({ taskQueue: worker.options.taskQueue }, 'control worker polling');
    const client = await connectClient();
    const schedules = new BackupSchedules(client);
    const backupAges = startBackupAgeRefresh({ images, metrics: metrics.backups, log, schedules, runAllowanceSeconds: env.SNAP_BACKUP_RUN_ALLOWANCE_S });
    // Once now and then periodically: what a crash left with no workflow (see src/reconciler/).
    const orphans = await retryOrphanedActivities({
      client,
      log,
      identity: control.identity,
      activityTypes: control.activityTypes,
      query: `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`,
    }).catch((err: unknown) => {
      log.warn({ err }, 'could not look for activities a dead control worker held');
      return 0;
    });
    if (orphans > 0) log.info({ retried: orphans }, 'activities of a dead control worker handed back for retry');
    let loop: ReconcileLoop | undefined;
    if (reconcile.enabled) {
      const reconciler = new SnapshotReconciler({ client, store, images, graceMs: reconcile.graceMs, log, schedules });
      loop = startReconcileLoop({ reconciler, intervalMs: reconcile.intervalMs, log });
    }
    return {
      async stop() {
        await loop?.stop();
        backupAges.stop();
        worker.shutdown();
        await running;
        await connection.close();
        await client.connection.close();
        await store.close();
        await metricsServer?.close();
      },
    };
  },
  log,
);
