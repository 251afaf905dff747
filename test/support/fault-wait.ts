// What every fault cell does around its fault: let the held step go, and wait for the workflow to
// close, with a deadline past which the run is called stuck and terminated.
import { unlink } from 'node:fs/promises';
import type { WorkflowHandle } from '@temporalio/client';
import type { SnapshotResult } from '../../src/contract';

/** Lets the step held at `hold` go (a missing hold file is already released). */
export async function release(hold: string): Promise<void> {
  await unlink(hold).catch(() => undefined);
}

export interface Closed {
  ended: 'completed' | 'failed' | 'stuck';
  result?: SnapshotResult;
  /** the run's failure, when it failed */
  error?: unknown;
}

/** The run's end, or `stuck` (the run terminated) when it is still open `closeTimeoutMs` from now. */
export async function awaitClose(handle: WorkflowHandle, closeTimeoutMs: number): Promise<Closed> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<Closed>((resolve) => {
    timer = setTimeout(() => resolve({ ended: 'stuck' }), closeTimeoutMs);
  });
  const closed = await Promise.race([
    (handle.result() as Promise<SnapshotResult>).then(
      (result): Closed => ({ ended: 'completed', result }),
      (error: unknown): Closed => ({ ended: 'failed', error }),
    ),
    deadline,
  ]);
  clearTimeout(timer);
  if (closed.ended === 'stuck') await handle.terminate('fault matrix: still open at the deadline').catch(() => undefined);
  return closed;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kill -9 of a worker holding a step: the step let go, the worker back `downMs` later. */
export async function killWhileHeld(worker: { kill(): Promise<void>; start(): Promise<void> }, hold: string, downMs = 3_000): Promise<void> {
  await worker.kill();
  await release(hold);
  await sleep(downMs);
  await worker.start();
}
