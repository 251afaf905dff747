// `tsx src/workers/host-worker-main.ts`: one per hypervisor, polls snapshot-host-<SNAP_HOST>.
// Env: TEMPORAL_* and the SNAP_* host settings of src/host/host-config.ts.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadHostConfig } from '../host/host-config';
import { LibvirtExportReleaser } from '../host/orphan-exports';
import { createLogger, logLevelFromEnv } from '../observability';
import { runMain } from '../process/run-main';
import { connectClient, connectWorker } from '../temporal/connect';
import { stepBarrierFromEnv } from '../fault-points/step-barrier';
import { WORKFLOW_TYPE } from '../contract';
import { createHostWorker } from './host-worker';
import { retryOrphanedActivities } from './orphaned-activities';
import { startWorkerMetrics } from './worker-metrics';
import { startWorkDirSweeps } from './workdir-sweeps';

const log = createLogger({ name: 'host-worker', level: logLevelFromEnv() });

runMain(
  'host-worker',
  async () => {
    // SDK chatter (webpack output, state changes) below WARN stays out of the service logs.
    Runtime.install({ shutdownSignals: [], logger: new DefaultLogger('WARN') });
    const config = loadHostConfig();
    const client = await connectClient();
    const connection = await connectWorker();
    const { metrics, server: metricsServer } = await startWorkerMetrics('host-worker', { host: config.host });
    const host = await createHostWorker({ config, connection, client, log, metrics, stepBarrier: stepBarrierFromEnv() });
    // Before polling: work dirs of runs that closed while no host worker was here to remove them,
    // with the qemu-nbd exports, backup jobs and paused guests they still hold; then periodically.
    const releaser = new LibvirtExportReleaser(host.session, { log });
    const sweeps = await startWorkDirSweeps({ client, workDirs: host.workDirs, log, releaser, intervalMs: config.inventoryIntervalMs });
    const running = host.run();
    // Polling first, so that the retries this hands back find a worker at once.
    const orphans = await retryOrphanedActivities({
      client,
      log,
      identity: host.identity,
      activityTypes: host.activityTypes,
      // config.host passed HostNameSchema: safe inside the query.
      query: `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND ComputeHost = '${config.host}'`,
    }).catch((err: unknown) => {
      log.warn({ err }, 'could not look for activities a dead host worker held');
      return 0;
    });
    if (orphans > 0) log.info({ retried: orphans }, 'activities of a dead host worker handed back for retry');
    log.info({ host: config.host, taskQueue: host.worker.options.taskQueue, libvirt: config.libvirtUri }, 'host worker polling');
    return {
      async stop() {
        sweeps.stop();
        host.shutdown();
        await running;
        await connection.close();
        await client.connection.close();
        await metricsServer?.close();
      },
    };
  },
  log,
);
