// A real host worker beside an API stack's stub one, of its own host name, acting as the workers'
// service user against the stack's image service (and a Cinder, when given): the python-openstackclient
// tests drive real guests through it. Started after the guest, so that its first inventory report
// finds the guest's owner in the domain, as Nova writes it.
import type { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import type { CinderForProject } from '../../src/cinder';
import { loadHostConfig, type HostConfig } from '../../src/host/host-config';
import { GlanceHttpClient } from '../../src/images/client';
import { connectWorker } from '../../src/temporal/connect';
import { createHostWorker, type HostWorker } from '../../src/workers/host-worker';
import type { ApiStack } from './api-stack';
import { TEST_INSTANCES_PATH } from './instance-fixture';

export interface StackHostWorker {
  config: HostConfig;
  worker: HostWorker;
  stop(): Promise<void>;
}

export async function startStackHostWorker(stack: ApiStack, options: { prefix: string; dir: string; serviceToken: string; hostEnv?: Record<string, string>; cinder?: CinderForProject }): Promise<StackHostWorker> {
  const config = loadHostConfig({ SNAP_HOST: `${options.prefix}-${stack.host}`, SNAP_DATA_DIR: options.dir, SNAP_INVENTORY_INTERVAL_S: '3600', SNAP_INSTANCES_PATH: TEST_INSTANCES_PATH, ...options.hostEnv });
  const connection: NativeConnection = await connectWorker();
  const worker = await createHostWorker({
    config,
    connection,
    client: stack.temporal,
    log: pino({ level: 'warn' }),
    images: new GlanceHttpClient(stack.images.url, options.serviceToken),
    ...(options.cinder === undefined ? {} : { cinder: options.cinder }),
  });
  const running = worker.run();
  return {
    config,
    worker,
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
