// One jest suite of fault cells on one fault stack: each cell must end as expected with no
// violation of the end state (see fault-checks.ts).
import { describeCell, runCell, type Cell } from './fault-cell';
import { startFaultStack, type FaultStack, type FaultStackOptions } from './fault-stack';

export type ExpectedCell = Cell & { expected: 'completed' | 'failed' };

/** `options` may be a getter, read when the stack starts (after the file's own beforeAll hooks, e.g. a Ceph cluster's). */
export function describeFaultCells(title: string, cells: readonly ExpectedCell[], options: FaultStackOptions | (() => FaultStackOptions) = {}): void {
  describe(title, () => {
    let stack: FaultStack | undefined;
    beforeAll(async () => {
      stack = await startFaultStack(typeof options === 'function' ? options() : options);
    }, 300_000);
    afterAll(async () => {
      await stack?.stop();
    }, 60_000);

    it.each(cells)('$fault during $step ($mode) ends $expected with nothing left behind', async (cell) => {
      if (!stack) throw new Error('fault stack did not start');
      // a dead worker's attempt is handed back at its successor's start; 3 min leaves room for slow machines
      const result = await runCell(stack, cell, { closeTimeoutMs: 180_000 });
      expect({ cell: describeCell(result), violations: result.violations }).toEqual({ cell: expect.any(String), violations: [] });
      expect(result.outcome).toBe(cell.expected);
    }, 300_000);
  });
}
