// A worker that starts finds the activities its dead predecessor on this machine still held, and
// fails them as retryable at once, so that Temporal schedules their next attempt now instead of
// after a start-to-close or heartbeat timeout. A predecessor is dead when its identity names this
// machine and a pid that no longer runs; activities of live workers, or of other machines, are
// left to their timeouts.
import { hostname } from 'node:os';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { errnoCode } from '../contract';

/** `<role>:<pid>@<machine>`: what the sweep parses back to tell whether a holder is alive. */
export function workerIdentity(role: string, pid = process.pid, machine = hostname()): string {
  return `${role}:${pid}@${machine}`;
}

const IDENTITY_RE = /^([a-z0-9-]+):(\d+)@(.+)$/;

function parseIdentity(identity: string): { role: string; pid: number; machine: string } | null {
  const m = IDENTITY_RE.exec(identity);
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) return null;
  return { role: m[1], pid: Number(m[2]), machine: m[3] };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

export interface OrphanSweepOptions {
  client: Client;
  log: Logger;
  /** visibility query for the open runs whose activities this worker could run */
  query: string;
  /** this worker's identity, from workerIdentity(role) */
  identity: string;
  /** the activity types this worker runs */
  activityTypes: ReadonlySet<string>;
}

/** Returns how many activities were handed back for an immediate retry. */
export async function retryOrphanedActivities(options: OrphanSweepOptions): Promise<number> {
  const me = parseIdentity(options.identity);
  if (me === null) return 0;
  let retried = 0;
  for await (const run of options.client.workflow.list({ query: options.query })) {
    try {
      const described = await options.client.workflow.getHandle(run.workflowId, run.runId).describe();
      for (const pending of described.raw.pendingActivities ?? []) {
        const type = pending.activityType?.name ?? '';
        const holder = parseIdentity(pending.lastWorkerIdentity ?? '');
        // STARTED (2): an attempt is held by a worker right now.
        if (pending.state !== 2 || !options.activityTypes.has(type) || holder === null) continue;
        if (holder.role !== me.role || holder.machine !== me.machine || holder.pid === me.pid || isRunning(holder.pid)) continue;
        await options.client.activity.fail(
          { workflowId: run.workflowId, runId: run.runId, activityId: pending.activityId ?? '' },
          ApplicationFailure.retryable(`the worker that held this attempt (${pending.lastWorkerIdentity ?? ''}) is gone`, 'WorkerRestarted'),
        );
        retried++;
        options.log.info({ workflow_id: run.workflowId, run_id: run.runId, activity: type, holder: pending.lastWorkerIdentity }, 'retrying an activity its dead worker held');
      }
    } catch (err) {
      // The run closed meanwhile, or the attempt moved on: nothing to hand back.
      options.log.debug({ err, workflow_id: run.workflowId }, 'orphaned-activity sweep skipped a run');
    }
  }
  return retried;
}
