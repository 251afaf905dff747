// `rbd diff` made into the changed ranges an incremental sends, its caps, and the names of the RBD
// snapshots that are ours (which run took each) against everyone else's.
import { CephNameError, coalesceExtents, MAX_DIFF_EXTENTS, ourSnapName, runOfOurSnap } from '../../../src/ceph';
import { DiffSchema } from '../../../src/ceph/diff';
import { ToolOutputInvalid } from '../../../src/process/tool-process';

const MiB = 1024 * 1024;

describe('coalesceExtents', () => {
  it('orders, merges touching and overlapping extents, and counts discarded ranges as changed', () => {
    const extents = [
      { offset: 8 * MiB, length: 4 * MiB, exists: false },
      { offset: 0, length: MiB, exists: true },
      { offset: MiB, length: MiB, exists: true },
      { offset: 10 * MiB, length: 4 * MiB, exists: true },
      { offset: 20 * MiB, length: 0, exists: true },
      { offset: 30 * MiB, length: 4096, exists: true },
    ];
    expect(coalesceExtents(extents, 64 * MiB)).toEqual([
      [0, 2 * MiB],
      [8 * MiB, 6 * MiB],
      [30 * MiB, 4096],
    ]);
  });

  it('keeps an extent inside a larger one inside it', () => {
    expect(coalesceExtents([{ offset: 0, length: 8 * MiB }, { offset: MiB, length: MiB }], 8 * MiB)).toEqual([[0, 8 * MiB]]);
  });

  it('refuses an extent that ends past the disk instead of clipping it', () => {
    expect(() => coalesceExtents([{ offset: 60 * MiB, length: 8 * MiB }], 64 * MiB)).toThrow(ToolOutputInvalid);
  });

  it('an empty diff is no change at all', () => {
    expect(coalesceExtents([], 64 * MiB)).toEqual([]);
  });
});

describe('the diff schema', () => {
  it(`takes at most ${MAX_DIFF_EXTENTS} extents`, () => {
    const extent = { offset: 0, length: 4096, exists: 'true' };
    expect(DiffSchema.safeParse(new Array<typeof extent>(MAX_DIFF_EXTENTS + 1).fill(extent)).success).toBe(false);
    expect(DiffSchema.parse([extent])).toEqual([{ offset: 0, length: 4096, exists: true }]);
  });
});

describe('our RBD snapshot names', () => {
  const run = '6f1c2b3a-9d4e-4f5a-8b7c-1d2e3f4a5b6c';

  it('name the run that took them, and only ours parse back', () => {
    const name = ourSnapName(run);
    expect(runOfOurSnap(name)).toBe(run);
    expect(ourSnapName(run.toUpperCase())).toBe(name);
    for (const other of ['snap', 'nova-resize', 'snapshot-1f0e', `${name}-x`, `x${name}`, name.slice(0, -1), 'snap-6f1c2b3a-9d4e-4f5a-8b7c-1d2e3f4a5b6c']) {
      expect(runOfOurSnap(other)).toBeNull();
    }
  });

  it('refuse a run id that is not a UUID before it reaches a command line', () => {
    for (const bad of ['', '--all', '../x', `${run}@s`, 'not-a-uuid']) expect(() => ourSnapName(bad)).toThrow(CephNameError);
  });
});
