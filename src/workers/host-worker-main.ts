// `tsx src/workers/host-worker-main.ts`: one per hypervisor, polls snapshot-host-<SNAP_HOST>.
// Env: TEMPORAL_* and the SNAP_* host settings of src/host/host-config.ts.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadHostConfig } from '../host/host-config';
import { createLogger, logLevelFromEnv } from '../observability';
import { connectClient, connectWorker } from '../temporal/connect';
import { createHostWorker } from './host-worker';
import { runMain } from './process-lifecycle';

const log = createLogger({ name: 'host-worker', level: logLevelFromEnv() });

runMain(
  'host-worker',
  async () => {
    // SDK chatter (webpack output, state changes) below WARN stays out of the service logs.
    Runtime.install({ shutdownSignals: [], logger: new DefaultLogger('WARN') });
    const config = loadHostConfig();
    const client = await connectClient();
    const connection = await connectWorker();
    const host = await createHostWorker({ config, connection, client, log });
    const running = host.run();
    log.info({ host: config.host, taskQueue: host.worker.options.taskQueue, libvirt: config.libvirtUri }, 'host worker polling');
    return {
      async stop() {
        host.shutdown();
        await running;
        await connection.close();
        await client.connection.close();
      },
    };
  },
  log,
);
