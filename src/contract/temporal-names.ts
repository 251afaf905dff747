// How the workers, the API, the reconciler and the workflows address each other in Temporal: task
// queues, workflow types and workflow ids. A name here is part of running histories and of the
// ops tools' queries, so it changes only together with every side that uses it.
import { z } from 'zod';

export const CONTROL_TASK_QUEUE = 'snapshot-control';

/** A host name becomes part of a task queue name and of log lines: keep it to DNS-ish characters. */
export const HostNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a host name of letters, digits, dot, dash, underscore');

export function hostTaskQueue(host: string): string {
  return `snapshot-host-${HostNameSchema.parse(host)}`;
}

export const WORKFLOW_TYPE = 'snapshotInstance';

/** One snapshot run per instance at a time: the id is the instance's. */
export function snapshotWorkflowId(instanceUuid: string): string {
  return `snapshot-${instanceUuid}`;
}

/** The workflow a host reports its domains through (src/workflows/report-inventory.ts). */
export const REPORT_INVENTORY_WORKFLOW = 'reportInventory';

export function inventoryWorkflowId(host: string): string {
  return `inventory-${host}`;
}
