// snapctl snapshots / retry / hosts: the admin-only ops endpoints.
import { HostsResponseSchema, RetryResponseSchema, SnapshotsResponseSchema } from '../api/api-schemas';
import { parseAnswer, type ComputeApiClient } from './api-client';
import { emit, line, table, type Output } from './output';

export interface SnapshotsFilter {
  state?: 'running' | 'failed' | 'completed';
  instance?: string;
  host?: string;
}

export async function listSnapshotsCommand(api: ComputeApiClient, out: Output, filter: SnapshotsFilter): Promise<void> {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (typeof v === 'string') query.set(k, v);
  const { snapshots } = parseAnswer(SnapshotsResponseSchema, await api.get(`/ops/snapshots${query.size > 0 ? `?${query.toString()}` : ''}`));
  emit(out, { snapshots }, () =>
    table(
      ['WORKFLOW', 'STATE', 'STEP', 'HOST', 'IMAGE', 'STARTED', 'TEMPORAL UI'],
      snapshots.map((s) => [s.workflowId, s.state, s.step, s.host, s.imageId, s.startTime, s.temporalUiUrl]),
    ),
  );
}

export async function retryCommand(api: ComputeApiClient, out: Output, workflowId: string): Promise<void> {
  const answer = await api.request('POST', `/ops/snapshots/${encodeURIComponent(workflowId)}/retry`);
  const { snapshot } = parseAnswer(RetryResponseSchema, answer.json);
  emit(out, { snapshot }, () => `${line(`Retrying ${snapshot.workflowId}: run ${snapshot.runId}, new image ${snapshot.imageId}`)}${line(snapshot.temporalUiUrl)}`);
}

export async function listHostsCommand(api: ComputeApiClient, out: Output): Promise<void> {
  const { hosts } = parseAnswer(HostsResponseSchema, await api.get('/ops/hosts'));
  emit(out, { hosts }, () => table(['HOST', 'SERVERS', 'BUSY'], hosts.map((h) => [h.host, h.servers, h.busy])));
}
