// The live point in time of a disk whose storage tracks changes itself (an RBD disk, see
// disk-source/storage-snapshots.ts), when the snapshot builds a chain: the storage's own snapshot,
// taken with the guest frozen, is the point; the export reads that snapshot (not the running disk),
// and the changed set is the storage's diff from the parent's snapshot. So the image, its point in
// time and the next diff's starting point are one and the same, which a backup job beside a
// storage snapshot could not promise (writes land between the two).
import type { ChainPlan, DomainDescription } from '../contract';
import { checkChainParent } from './checkpoint-chain';
import type { StorageSnapshots } from './disk-source/storage-snapshots';
import type { ExportRecord } from './export-record';
import type { BlockdevImageSpec } from './nbd-export';
import type { Domain, Libvirt } from '../libvirt';
import type { DiskSource } from './disk-source/disk-source';
import { withQuiescedGuest, type QuiesceOutcome } from './quiesce';

type ChainFacts = NonNullable<ExportRecord['chain']>;

/** What of snapshot-export's ExportContext the point needs. */
export interface StoragePointContext {
  client: Libvirt;
  dom: Domain;
  description: DomainDescription;
  quiesceTimeoutMs: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
  source: DiskSource;
}

export interface StoragePoint {
  image: BlockdevImageSpec;
  quiesce: QuiesceOutcome;
  chain: ChainFacts;
}

/**
 * The run's point (found when an earlier attempt took it: look before creating), and full or
 * incremental with the reason, as a checkpoint's chain says it: incremental only when the plan's
 * parent image is there, the disk is the same one at the same size and the parent's point is still
 * on the disk.
 */
export async function takeStoragePoint(ctx: StoragePointContext, snapshots: StorageSnapshots, plan: ChainPlan, runKey: string, previous: ExportRecord | undefined): Promise<StoragePoint> {
  const { description } = ctx;
  const identity = await ctx.source.identity();
  const name = snapshots.nameFor(runKey);
  const checked = checkChainParent(plan, description, identity, snapshots.noun);
  let parent = checked.parent;
  let fullReason = checked.parent === null ? checked.reason : '';
  if (parent !== null && !(await snapshots.exists(parent.checkpoint))) {
    fullReason = `${snapshots.noun} ${parent.checkpoint} is gone from the disk`;
    parent = null;
  }
  const quiesce = await takeOrFind(ctx, snapshots, name, previous);
  const image = snapshots.readOnlyImage(name);
  const base = { checkpoint: name, diskIdentity: identity };
  if (parent !== null) {
    const diff = await snapshots.changedBetween(parent.checkpoint, name, description.virtualSize);
    if ('changed' in diff) return { image, quiesce, chain: { kind: 'incremental', parentImageId: parent.imageId, changed: diff.changed, ...base } };
    fullReason = `${snapshots.noun} ${parent.checkpoint} cannot be used: ${diff.unusable}`;
    ctx.log?.('storage diff refused, taking a full snapshot', { from: parent.checkpoint, reason: fullReason });
  }
  return { image, quiesce, chain: { kind: 'full', fullReason, ...base } };
}

async function takeOrFind(ctx: StoragePointContext, snapshots: StorageSnapshots, name: string, previous: ExportRecord | undefined): Promise<QuiesceOutcome> {
  if (await snapshots.exists(name)) {
    if (previous?.chain?.checkpoint === name) {
      return { quiesced: previous.quiesced, freezeWindowMs: previous.freezeWindowMs, ...(previous.quiesceError !== undefined ? { quiesceError: previous.quiesceError } : {}) };
    }
    return { quiesced: false, freezeWindowMs: null, quiesceError: `${snapshots.noun} ${name} was taken by an earlier attempt of this run whose record was lost: whether it was quiesced is not known` };
  }
  const timeoutMs = ctx.quiesceTimeoutMs;
  return (await withQuiescedGuest(ctx.client, ctx.dom, { timeoutMs, log: ctx.log }, () => snapshots.create(name, timeoutMs))).quiesce;
}
