import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { connectClient, connectWorker } from '../../../src/temporal/connect';
import { CONTROL_TASK_QUEUE, hostTaskQueue } from '../../../src/contract';
import { FakeCloud } from './fake-cloud';

export const STUB_HOST = 'stubhost';

export interface StubEnvironment {
  client: Client;
  cloud: FakeCloud;
  stop(): Promise<void>;
}

/** The real workflow code on the real dev server, with the fake cloud's activities on both queues. */
export async function startStubEnvironment(): Promise<StubEnvironment> {
  const client = await connectClient();
  const connection: NativeConnection = await connectWorker();
  const cloud = new FakeCloud();
  const control = await Worker.create({
    connection,
    taskQueue: CONTROL_TASK_QUEUE,
    workflowsPath: require.resolve('../../../src/workflows'),
    activities: cloud.controlActivities(),
  });
  const host = await Worker.create({ connection, taskQueue: hostTaskQueue(STUB_HOST), activities: cloud.hostActivities() });
  const running = Promise.all([control.run(), host.run()]);
  return {
    client,
    cloud,
    async stop() {
      control.shutdown();
      host.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
    },
  };
}
