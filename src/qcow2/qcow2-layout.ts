// The whole qcow2 layout, decided before the first byte, in the order qemu's
// scripts/qcow2-to-stdout.py writes it: header, refcount table, refcount blocks, L1 table, L2
// tables, data clusters. Because every region's size is known up front, the output size is exact
// (the upload's Content-Length) and the bytes at any offset are a function of the map and the data.

import { AllocationMap, MiB, validateAllocationMap } from './allocation-map';
import { Qcow2LayoutError } from './errors';
import { at, ordinalOf, RunList, RunListBuilder } from './runs';

export const DEFAULT_CLUSTER_SIZE = 64 * 1024;
export const DEFAULT_REFCOUNT_BITS = 16;
export const MIN_CLUSTER_SIZE = 512;
/** QEMU cannot open images with larger clusters. */
export const MAX_CLUSTER_SIZE = 2 * MiB;
/** QCOW_MAX_L1_SIZE in QEMU's block/qcow2.h, in bytes. */
export const QEMU_MAX_L1_BYTES = 32 * MiB;
/** QCOW_MAX_REFTABLE_SIZE in QEMU's block/qcow2.h, in bytes. */
export const QEMU_MAX_REFTABLE_BYTES = 8 * MiB;

export interface Qcow2Options {
  /** power of two, 512 B .. 2 MiB; 64 KiB by default, as qemu-img create */
  readonly clusterSize?: number;
  /** 1, 2, 4, 8, 16, 32 or 64; 16 by default */
  readonly refcountBits?: number;
}

/** A contiguous run of host clusters holding one kind of structure. */
export interface Qcow2Region {
  readonly offset: number;
  readonly clusters: number;
}

export interface Qcow2Plan {
  readonly format: 'qcow2';
  readonly virtualSize: number;
  readonly clusterSize: number;
  readonly clusterBits: number;
  readonly refcountBits: number;
  /** exact output length in bytes */
  readonly size: number;
  /** host clusters in the output, every one of them with refcount 1 */
  readonly hostClusters: number;
  /** l1_size in the header: one entry per L2 table the virtual size needs, allocated or not */
  readonly l1Entries: number;
  readonly header: Qcow2Region;
  readonly refcountTable: Qcow2Region;
  readonly refcountBlocks: Qcow2Region;
  readonly l1Table: Qcow2Region;
  readonly l2Tables: Qcow2Region;
  readonly data: Qcow2Region;
  /** guest cluster indices that are stored, in guest order; data cluster k is the k-th of them */
  readonly dataClusters: RunList;
  /** L1 indices that have an L2 table; L2 table k serves the k-th of them */
  readonly l2TableIndices: RunList;
}

const REFCOUNT_WIDTHS: ReadonlySet<number> = new Set([1, 2, 4, 8, 16, 32, 64]);

function checkOptions(options: Qcow2Options): { clusterSize: number; refcountBits: number } {
  const clusterSize = options.clusterSize ?? DEFAULT_CLUSTER_SIZE;
  const refcountBits = options.refcountBits ?? DEFAULT_REFCOUNT_BITS;
  const powerOfTwo = Number.isSafeInteger(clusterSize) && clusterSize > 0 && (clusterSize & (clusterSize - 1)) === 0;
  if (!powerOfTwo || clusterSize < MIN_CLUSTER_SIZE || clusterSize > MAX_CLUSTER_SIZE) {
    throw new Qcow2LayoutError('bad-option', `cluster size must be a power of two from ${MIN_CLUSTER_SIZE} to ${MAX_CLUSTER_SIZE}, got ${clusterSize}`);
  }
  if (!REFCOUNT_WIDTHS.has(refcountBits)) {
    throw new Qcow2LayoutError('bad-option', `refcount bits must be one of 1, 2, 4, 8, 16, 32, 64, got ${refcountBits}`);
  }
  return { clusterSize, refcountBits };
}

/** Guest clusters touched by a data extent; zero and hole extents cost nothing. */
function allocatedGuestClusters(map: AllocationMap, clusterSize: number): RunList {
  const builder = new RunListBuilder();
  for (const extent of map.extents) {
    if (extent.kind !== 'data') continue;
    builder.add(Math.floor(extent.offset / clusterSize), Math.ceil((extent.offset + extent.length) / clusterSize));
  }
  return builder.build();
}

/** The L1 indices whose L2 table has at least one allocated entry. */
function allocatedL2Tables(dataClusters: RunList, l2Entries: number): RunList {
  const builder = new RunListBuilder();
  for (let i = 0; i < dataClusters.count; i++) {
    builder.add(Math.floor(at(dataClusters.starts, i) / l2Entries), Math.floor((at(dataClusters.ends, i) - 1) / l2Entries) + 1);
  }
  return builder.build();
}

/**
 * Refcount blocks must count themselves and the refcount table, and adding them can need more of
 * both; grow until the numbers stop moving (they only grow, so this ends within a few rounds).
 */
function refcountStructures(otherClusters: number, clusterSize: number, refcountBits: number): { blocks: number; tableClusters: number } {
  const perBlock = (clusterSize * 8) / refcountBits;
  const perTableCluster = clusterSize / 8;
  let blocks = Math.ceil(otherClusters / perBlock);
  let tableClusters = Math.ceil(blocks / perTableCluster);
  for (;;) {
    const needed = Math.ceil((otherClusters + blocks + tableClusters) / perBlock);
    if (needed <= blocks) return { blocks, tableClusters };
    blocks = needed;
    tableClusters = Math.ceil(blocks / perTableCluster);
  }
}

export function planQcow2(map: AllocationMap, options: Qcow2Options = {}): Qcow2Plan {
  const { clusterSize, refcountBits } = checkOptions(options);
  validateAllocationMap(map);
  const clusterBits = Math.log2(clusterSize);
  const entriesPerCluster = clusterSize / 8;
  const guestClusters = Math.ceil(map.virtualSize / clusterSize);
  const l1Entries = Math.ceil(guestClusters / entriesPerCluster);
  if (l1Entries * 8 > QEMU_MAX_L1_BYTES) {
    throw new Qcow2LayoutError('too-large', `a ${map.virtualSize}-byte disk needs an L1 table of ${l1Entries * 8} bytes at ${clusterSize}-byte clusters, beyond QEMU's ${QEMU_MAX_L1_BYTES}; use larger clusters`);
  }
  const l1Clusters = Math.ceil(l1Entries / entriesPerCluster);
  const dataClusters = allocatedGuestClusters(map, clusterSize);
  const l2TableIndices = allocatedL2Tables(dataClusters, entriesPerCluster);

  const otherClusters = 1 + l1Clusters + l2TableIndices.total + dataClusters.total;
  const refcounts = refcountStructures(otherClusters, clusterSize, refcountBits);
  if (refcounts.tableClusters * clusterSize > QEMU_MAX_REFTABLE_BYTES) {
    throw new Qcow2LayoutError('too-large', `the refcount table would take ${refcounts.tableClusters * clusterSize} bytes, beyond QEMU's ${QEMU_MAX_REFTABLE_BYTES}; use larger clusters or fewer refcount bits`);
  }

  let next = 0;
  const region = (clusters: number): Qcow2Region => {
    const r = { offset: next * clusterSize, clusters };
    next += clusters;
    return r;
  };
  const header = region(1);
  const refcountTable = region(refcounts.tableClusters);
  const refcountBlocks = region(refcounts.blocks);
  const l1Table = region(l1Clusters);
  const l2Tables = region(l2TableIndices.total);
  const data = region(dataClusters.total);
  return {
    format: 'qcow2',
    virtualSize: map.virtualSize,
    clusterSize,
    clusterBits,
    refcountBits,
    size: next * clusterSize,
    hostClusters: next,
    l1Entries,
    header,
    refcountTable,
    refcountBlocks,
    l1Table,
    l2Tables,
    data,
    dataClusters,
    l2TableIndices,
  };
}

/** Where the guest byte at guestOffset is stored in the image, or null when it reads as zero. */
export function qcow2HostOffset(plan: Qcow2Plan, guestOffset: number): number | null {
  const cluster = Math.floor(guestOffset / plan.clusterSize);
  const ordinal = ordinalOf(plan.dataClusters, cluster);
  if (ordinal < 0) return null;
  return plan.data.offset + ordinal * plan.clusterSize + (guestOffset % plan.clusterSize);
}

export interface DataPlacement {
  readonly guestOffset: number;
  readonly hostOffset: number;
  /** whole clusters; the last one of the disk may reach past the virtual size */
  readonly length: number;
}

/** Every stored guest range and where it lands, one entry per run of contiguous clusters. */
export function* qcow2DataPlacements(plan: Qcow2Plan): Generator<DataPlacement> {
  const runs = plan.dataClusters;
  for (let i = 0; i < runs.count; i++) {
    const start = at(runs.starts, i);
    yield {
      guestOffset: start * plan.clusterSize,
      hostOffset: plan.data.offset + at(runs.before, i) * plan.clusterSize,
      length: (at(runs.ends, i) - start) * plan.clusterSize,
    };
  }
}
