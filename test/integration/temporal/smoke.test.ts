import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { connectClient, connectWorker } from '../../../src/temporal/connect';
import { loadTemporalSettings } from '../../../src/temporal/connection-config';
import { InstanceUuidKey, SnapshotStepKey } from '../../../src/temporal/search-attributes';

describe('the real Temporal dev server', () => {
  it('runs a workflow to completion and records its upserted search attributes', async () => {
    const settings = loadTemporalSettings();
    const client = await connectClient(settings);
    const connection = await connectWorker(settings);
    const taskQueue = `smoke-${randomUUID()}`;
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowsPath: require.resolve('../../fixtures/workflows/smoke'),
      activities: { echo: async (text: string) => text.toUpperCase() },
    });
    const instanceUuid = randomUUID();
    try {
      const result = await worker.runUntil(
        client.workflow.execute('smoke', { taskQueue, workflowId: `smoke-${instanceUuid}`, args: [instanceUuid] }),
      );
      expect(result).toBe(`smoke:${instanceUuid.toUpperCase()}`);
      const description = await client.workflow.getHandle(`smoke-${instanceUuid}`).describe();
      expect(description.status.name).toBe('COMPLETED');
      expect(description.typedSearchAttributes.get(InstanceUuidKey)).toBe(instanceUuid);
      expect(description.typedSearchAttributes.get(SnapshotStepKey)).toBe('smoke');
    } finally {
      await connection.close();
      await client.connection.close();
    }
  });
});
