// `tsx src/workers/host-worker-main.ts`: one per hypervisor, polls snapshot-host-<SNAP_HOST>.
// Env: TEMPORAL_* and the SNAP_* host settings of src/host/host-config.ts.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadHostConfig } from '../host/host-config';
import { createLogger, logLevelFromEnv } from '../observability';
import { runMain } from '../process/run-main';
import { sweepClosedWorkDirs } from '../reconciler/workdir-sweeper';
import { connectClient, connectWorker } from '../temporal/connect';
import { testBarrierFromEnv } from '../testing/test-barrier';
import { createHostWorker } from './host-worker';
import { startWorkerMetrics } from './worker-metrics';

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
    const host = await createHostWorker({ config, connection, client, log, metrics, testBarrier: testBarrierFromEnv() });
    // Before polling: work dirs of runs that closed while no host worker was here to remove them.
    const swept = await sweepClosedWorkDirs({ client, workDirs: host.workDirs, log });
    if (swept.removed.length + swept.kept.length > 0) log.info({ removed: swept.removed.length, kept: swept.kept.length }, 'snapshot work dirs swept at start-up');
    const running = host.run();
    log.info({ host: config.host, taskQueue: host.worker.options.taskQueue, libvirt: config.libvirtUri }, 'host worker polling');
    return {
      async stop() {
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
