// A host's domain report travels host → Temporal → control worker, so hosts never need database
// credentials (as Nova's computes talk to the conductor, not the database).
import { proxyActivities } from '@temporalio/workflow';
import { CONTROL_TASK_QUEUE, type ControlActivities, type InventoryDomain } from '../contract';

const { recordInventory } = proxyActivities<Pick<ControlActivities, 'recordInventory'>>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

export async function reportInventory(host: string, domains: InventoryDomain[]): Promise<number> {
  const { instances } = await recordInventory({ host, domains });
  return instances;
}
