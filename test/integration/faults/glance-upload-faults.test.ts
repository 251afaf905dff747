// The fault matrix core's upload cells against a real Glance behind a real Keystone (the workers
// upload as the Keystone service user): Glance cannot resume, so after a host worker's kill -9
// mid-upload the next attempt starts over from byte 0, and a refused upload fails cleanly; in
// both, no partial image is ever left active (the cells' checks read Glance itself).
import { describeCell, runCell, type Cell } from '../../support/fault-cell';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';

const UPLOAD_CELLS: (Cell & { expected: 'completed' | 'failed' })[] = [
  { fault: 'host-kill', step: 'upload', mode: 'cold-running', expected: 'completed' },
  { fault: 'image-5xx', step: 'upload', mode: 'live', expected: 'failed' },
];

describe('fault matrix upload cells on Glance: every fault ends in a defined state', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack({ imageBackend: 'glance' });
  }, 300_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it.each(UPLOAD_CELLS)('$fault during $step ($mode) ends $expected with nothing left behind', async (cell) => {
    if (!stack) throw new Error('fault stack did not start');
    const result = await runCell(stack, cell, { closeTimeoutMs: 180_000 });
    expect({ cell: describeCell(result), violations: result.violations }).toEqual({ cell: expect.any(String), violations: [] });
    expect(result.outcome).toBe(cell.expected);
  }, 300_000);
});
