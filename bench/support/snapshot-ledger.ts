// "Exactly one running snapshot per instance at any time", checked two ways during an API load run:
//  - sampled: every interval, running snapshotInstance workflows grouped by their InstanceUuid
//    search attribute (Temporal visibility) and instances with a snapshot task_state (the store);
//  - exhaustively after the run: every run of every instance from visibility, sorted by start, must
//    not overlap the next one, and every accepted request must have produced exactly one run.
import type { Client } from '@temporalio/client';
import type { InstanceStore } from '../../src/store';
import { InstanceUuidKey } from '../../src/temporal/search-attributes';
import { SNAPSHOT_TASK_STATES, WORKFLOW_TYPE } from '../../src/contract';

export interface SampleStats {
  samples: number;
  /** most running workflows seen for one instance in one sample (must be ≤ 1) */
  maxRunningPerInstance: number;
  maxRunningTotal: number;
  maxTaskStateSet: number;
}

export function startSampler(client: Client, store: InstanceStore, intervalMs: number): { stop(): Promise<SampleStats> } {
  const stats: SampleStats = { samples: 0, maxRunningPerInstance: 0, maxRunningTotal: 0, maxTaskStateSet: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const perInstance = new Map<string, number>();
      let total = 0;
      for await (const run of client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'` })) {
        const uuid = run.typedSearchAttributes.get(InstanceUuidKey) ?? run.workflowId;
        perInstance.set(uuid, (perInstance.get(uuid) ?? 0) + 1);
        total++;
      }
      const busy = await store.listByTaskState([...SNAPSHOT_TASK_STATES]);
      stats.samples++;
      stats.maxRunningPerInstance = Math.max(stats.maxRunningPerInstance, ...perInstance.values(), 0);
      stats.maxRunningTotal = Math.max(stats.maxRunningTotal, total);
      stats.maxTaskStateSet = Math.max(stats.maxTaskStateSet, busy.length);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return stats;
    },
  };
}

export interface LedgerCheck {
  runs: number;
  instancesSnapshotted: number;
  overlaps: number;
  running: number;
  completed: number;
  other: number;
}

/** Every run, grouped by instance; counts overlaps between consecutive runs of one instance. */
export async function checkLedger(client: Client): Promise<LedgerCheck> {
  const byInstance = new Map<string, { start: number; close: number }[]>();
  const check: LedgerCheck = { runs: 0, instancesSnapshotted: 0, overlaps: 0, running: 0, completed: 0, other: 0 };
  for await (const run of client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}'` })) {
    check.runs++;
    if (run.status.name === 'RUNNING') check.running++;
    else if (run.status.name === 'COMPLETED') check.completed++;
    else check.other++;
    const uuid = run.typedSearchAttributes.get(InstanceUuidKey) ?? run.workflowId;
    const span = { start: run.startTime.getTime(), close: run.closeTime?.getTime() ?? Infinity };
    byInstance.set(uuid, [...(byInstance.get(uuid) ?? []), span]);
  }
  check.instancesSnapshotted = byInstance.size;
  for (const spans of byInstance.values()) {
    spans.sort((a, b) => a.start - b.start);
    for (let i = 1; i < spans.length; i++) {
      const prev = spans[i - 1];
      const cur = spans[i];
      if (prev && cur && cur.start < prev.close) check.overlaps++;
    }
  }
  return check;
}

/** Waits until no snapshot workflow is running (the load has stopped; let the accepted ones finish). */
export async function waitForDrain(client: Client, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { count } = await client.workflow.count(`WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`);
    if (count === 0) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}
