// The core of the fault matrix in every `npm test`: real processes killed with SIGKILL (host and control workers), a real
// Temporal server restarted on its database, a real guest deleted and a real upload refused. The
// full matrix is `npm run faults`. Each cell checks the whole end state (src of truth: libvirt,
// the store, the image service, the snapshots dir, Temporal visibility), not the workflow's word.
import { describeCell, runCell, type Cell } from '../../support/fault-cell';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';

const CORE: (Cell & { expected: 'completed' | 'failed' })[] = [
  { fault: 'host-kill', step: 'extract', mode: 'live', expected: 'completed' },
  { fault: 'host-kill', step: 'upload', mode: 'cold-running', expected: 'completed' },
  { fault: 'temporal-restart', step: 'extract', mode: 'cold-paused', expected: 'completed' },
  // the control steps are local activities: one run again by a new control worker finds its own write
  { fault: 'control-kill', step: 'task_state', mode: 'live', expected: 'completed' },
  { fault: 'instance-deleted', step: 'extract', mode: 'cold-running', expected: 'failed' },
  { fault: 'image-5xx', step: 'upload', mode: 'live', expected: 'failed' },
];

describe('fault matrix core: every fault ends in a defined state', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack();
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it.each(CORE)('$fault during $step ($mode) ends $expected with nothing left behind', async (cell) => {
    if (!stack) throw new Error('fault stack did not start');
    // a dead worker's attempt is handed back at its successor's start; 3 min leaves room for slow machines
    const result = await runCell(stack, cell, { closeTimeoutMs: 180_000 });
    expect({ cell: describeCell(result), violations: result.violations }).toEqual({ cell: expect.any(String), violations: [] });
    expect(result.outcome).toBe(cell.expected);
  }, 240_000);
});
