// A chained live snapshot of a disk whose storage tracks changes (RBD): the point is taken with the
// guest frozen, or found when the run's earlier attempt took it; incremental only when the parent's
// point is on the same disk at the same size, else full with the reason.
import type { ChainPlan, DomainDescription } from '../../../src/contract';
import type { Domain, Libvirt } from '../../../src/libvirt';
import type { DiskSource } from '../../../src/host/disk-source/disk-source';
import type { StorageSnapshots } from '../../../src/host/disk-source/storage-snapshots';
import type { ExportRecord } from '../../../src/host/export-record';
import { takeStoragePoint } from '../../../src/host/storage-point-export';

const RUN = '6f1c2b3a-9d4e-4f5a-8b7c-1d2e3f4a5b6c';
const PARENT_IMAGE = '0f2b6c4e-2f4a-4d1e-9a51-6d2c1b7e9f00';
const SIZE = 64 * 1024 * 1024;

function fakes(points: string[], diff: Awaited<ReturnType<StorageSnapshots['changedBetween']>> = { changed: [[0, 4096]] }) {
  const calls: string[] = [];
  const snapshots: StorageSnapshots = {
    noun: 'RBD snapshot',
    nameFor: (run) => `ours-${run}`,
    exists: async (name) => points.includes(name),
    create: async (name) => {
      calls.push(`create ${name}`);
      points.push(name);
    },
    readOnlyImage: (name) => ({ blockdev: `json:{"driver":"raw","file":{"driver":"rbd","snapshot":"${name}"}}` }),
    changedBetween: async (from, to) => {
      calls.push(`diff ${from}..${to}`);
      return diff;
    },
    retain: async () => [],
    discard: async () => true,
  };
  const client = {
    domainFSFreeze: async () => void calls.push('freeze'),
    domainFSThaw: async () => void calls.push('thaw'),
  } as unknown as Libvirt;
  const source = { kind: 'rbd', checkpointRefusal: 'no checkpoints', identity: async () => 'rbd:fsid/vms/101b', readOnlyImage: () => ({ blockdev: 'json:{}' }), snapshots } as DiskSource;
  const ctx = { client, dom: { name: 'g', uuid: RUN, id: 1 } as Domain, description: { virtualSize: SIZE } as DomainDescription, quiesceTimeoutMs: 50, source };
  return { ctx, snapshots, calls };
}

const planOn = (checkpoint: string, over: Partial<NonNullable<ChainPlan['parent']>> = {}): ChainPlan => ({
  composes: true,
  reason: null,
  parent: { imageId: PARENT_IMAGE, checkpoint, checkpointXml: null, diskIdentity: 'rbd:fsid/vms/101b', virtualSize: SIZE, ...over },
});

describe('takeStoragePoint', () => {
  it('the first snapshot: the point taken between freeze and thaw, full with the plan\'s reason', async () => {
    const { ctx, snapshots, calls } = fakes([]);
    const point = await takeStoragePoint(ctx, snapshots, { composes: true, parent: null, reason: 'the first snapshot of this instance' }, RUN, undefined);
    expect(calls).toEqual(['freeze', `create ours-${RUN}`, 'thaw']);
    expect(point.chain).toEqual({ kind: 'full', fullReason: 'the first snapshot of this instance', checkpoint: `ours-${RUN}`, diskIdentity: 'rbd:fsid/vms/101b' });
    expect(point.quiesce).toMatchObject({ quiesced: true });
    expect(point.image.blockdev).toContain(`"snapshot":"ours-${RUN}"`);
  });

  it('incremental: the changes are the storage diff from the parent\'s point to this one', async () => {
    const { ctx, snapshots, calls } = fakes(['ours-parent'], { changed: [[0, 4096], [8192, 4096]] });
    const point = await takeStoragePoint(ctx, snapshots, planOn('ours-parent'), RUN, undefined);
    expect(calls).toEqual(['freeze', `create ours-${RUN}`, 'thaw', `diff ours-parent..ours-${RUN}`]);
    expect(point.chain).toEqual({ kind: 'incremental', parentImageId: PARENT_IMAGE, changed: [[0, 4096], [8192, 4096]], checkpoint: `ours-${RUN}`, diskIdentity: 'rbd:fsid/vms/101b' });
  });

  it("the parent's point deleted from the disk: full, with the reason", async () => {
    const { ctx, snapshots, calls } = fakes([]);
    const point = await takeStoragePoint(ctx, snapshots, planOn('ours-parent'), RUN, undefined);
    expect(point.chain).toMatchObject({ kind: 'full', fullReason: 'RBD snapshot ours-parent is gone from the disk', checkpoint: `ours-${RUN}` });
    expect(calls.filter((c) => c.startsWith('diff'))).toEqual([]);
  });

  it('another disk under the same name, or a resized one: full, with the reason', async () => {
    const other = fakes(['ours-parent']);
    expect((await takeStoragePoint(other.ctx, other.snapshots, planOn('ours-parent', { diskIdentity: 'rbd:fsid/vms/99aa' }), RUN, undefined)).chain.fullReason).toBe(
      'the disk is not the one RBD snapshot ours-parent was taken on (rbd:fsid/vms/99aa, now rbd:fsid/vms/101b)',
    );
    const resized = fakes(['ours-parent']);
    expect((await takeStoragePoint(resized.ctx, resized.snapshots, planOn('ours-parent', { virtualSize: SIZE / 2 }), RUN, undefined)).chain.fullReason).toMatch(/virtual size changed/);
  });

  it('a diff the storage cannot give: full, with its reason', async () => {
    const { ctx, snapshots } = fakes(['ours-parent'], { unusable: 'rbd diff reports more than 1048576 extents' });
    const point = await takeStoragePoint(ctx, snapshots, planOn('ours-parent'), RUN, undefined);
    expect(point.chain).toMatchObject({ kind: 'full', fullReason: 'RBD snapshot ours-parent cannot be used: rbd diff reports more than 1048576 extents' });
  });

  it('a retried step finds the point its run took: no second freeze or create, its quiesce facts from the record', async () => {
    const { ctx, snapshots, calls } = fakes(['ours-parent', `ours-${RUN}`]);
    const previous = { quiesced: true, freezeWindowMs: 12, chain: { kind: 'incremental', checkpoint: `ours-${RUN}` } } as ExportRecord;
    const point = await takeStoragePoint(ctx, snapshots, planOn('ours-parent'), RUN, previous);
    expect(calls).toEqual([`diff ours-parent..ours-${RUN}`]);
    expect(point.quiesce).toEqual({ quiesced: true, freezeWindowMs: 12 });
    expect(point.chain.kind).toBe('incremental');
  });

  it('found without its record: kept, and not claimed quiesced', async () => {
    const { ctx, snapshots, calls } = fakes([`ours-${RUN}`]);
    const point = await takeStoragePoint(ctx, snapshots, { composes: true, parent: null, reason: 'the first snapshot of this instance' }, RUN, undefined);
    expect(calls).toEqual([]);
    expect(point.quiesce).toMatchObject({ quiesced: false, freezeWindowMs: null, quiesceError: expect.stringMatching(/earlier attempt/) as string });
  });
});
