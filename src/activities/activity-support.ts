// What every long host activity needs: periodic heartbeats (so a dead worker is noticed within the
// heartbeat timeout and the step is retried on the host's queue) and the activity's cancellation
// signal for the tools it runs; and an id that an activity call gets again when it is run again.
import { createHash, randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { uuidFromBytes } from '../libvirt';

/** Heartbeats every few seconds with the latest details until `work` settles. */
export async function withHeartbeat<T>(work: (report: (details: unknown) => void, signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  let details: unknown = undefined;
  ctx.heartbeat(details);
  const timer = setInterval(() => ctx.heartbeat(details), 5_000);
  try {
    return await work((d) => {
      details = d;
    }, ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/** A counting semaphore: per-host limits on concurrent extracts and uploads. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** RFC 9562's namespace for the name-based ids below (a fixed random UUID of ours). */
const ACTIVITY_CALL_NAMESPACE = Buffer.from('6c1f3b0e9d2a4f7b8e5c0a1d2b3c4d5e', 'hex');

/**
 * An id that this activity call gets again when it runs again: a name-based UUID (RFC 9562,
 * version 5) of its workflow run and its activity id in that run. A local activity whose worker
 * died before the workflow task recorded it runs anew from attempt 1 under the same activity id,
 * so what the first run created under this id, the next one finds instead of making a second.
 */
export function activityCallUuid(): string {
  const { workflowExecution, activityId } = Context.current().info;
  // Outside a workflow there is no run to be repeated in.
  if (workflowExecution === undefined) return randomUUID();
  const hash = createHash('sha1').update(ACTIVITY_CALL_NAMESPACE).update(`${workflowExecution.workflowId}/${workflowExecution.runId}/${activityId}`, 'utf8').digest();
  hash.writeUInt8((hash.readUInt8(6) & 0x0f) | 0x50, 6);
  hash.writeUInt8((hash.readUInt8(8) & 0x3f) | 0x80, 8);
  return uuidFromBytes(hash.subarray(0, 16));
}
