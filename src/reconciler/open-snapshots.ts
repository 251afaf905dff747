// Which snapshots are still running, asked of Temporal in the two ways that together are safe:
// one visibility listing per pass (cheap, covers runs started by anyone under any id, but lags a
// few hundred milliseconds or more behind reality), and a describe by workflow id for every
// candidate right before acting on it (strongly consistent, so a run that visibility has not
// indexed yet is still seen).
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ImageIdKey, InstanceUuidKey } from '../temporal/search-attributes';
import { snapshotWorkflowId, WORKFLOW_TYPE } from '../contract';

export interface OpenSnapshotIndex {
  instanceUuids: ReadonlySet<string>;
  imageIds: ReadonlySet<string>;
  workflowIds: ReadonlySet<string>;
}

/** Every open snapshotInstance run as visibility sees it now. */
export async function listOpenSnapshots(client: Client): Promise<OpenSnapshotIndex> {
  const instanceUuids = new Set<string>();
  const imageIds = new Set<string>();
  const workflowIds = new Set<string>();
  const query = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`;
  for await (const run of client.workflow.list({ query })) {
    workflowIds.add(run.workflowId);
    const uuid = run.typedSearchAttributes.get(InstanceUuidKey);
    const image = run.typedSearchAttributes.get(ImageIdKey);
    if (uuid !== undefined) instanceUuids.add(uuid);
    if (image !== undefined) imageIds.add(image);
  }
  return { instanceUuids, imageIds, workflowIds };
}

/**
 * True when the instance's snapshot workflow (`snapshot-<uuid>`) has an open run. Describe by id
 * answers for the latest run of that id, which is the only one that can be open (the API starts
 * with conflict policy FAIL).
 */
export async function snapshotRunIsOpen(client: Client, instanceUuid: string): Promise<boolean> {
  return workflowIsOpen(client, snapshotWorkflowId(instanceUuid));
}

export async function workflowIsOpen(client: Client, workflowId: string, runId?: string): Promise<boolean> {
  try {
    const description = await client.workflow.getHandle(workflowId, runId).describe();
    return description.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
