// Metadata bytes for any range of [0, data.offset), computed from the plan alone: no guest data is
// read, and no table is kept in memory beyond the clusters being rendered. Each host cluster is
// rendered on its own from the compact runs, so a restart at any offset costs one cluster's work.

import { Qcow2LayoutError } from './errors';
import { Qcow2Plan } from './qcow2-layout';
import { at, firstRunEndingAfter, runAtOrdinal } from './runs';

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const QCOW2_VERSION = 3;
/** Through compression_type (byte 104) plus padding to a multiple of 8, as QEMU writes today. */
export const QCOW2_HEADER_LENGTH = 112;
/** Bit 63 of an L1/L2 entry: refcount exactly one, which holds for every cluster we write. */
const COPIED_HIGH_BIT = 0x80000000;
const TWO_POW_32 = 2 ** 32;

function writeU64(buf: Buffer, pos: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), pos);
  buf.writeUInt32BE(value % TWO_POW_32, pos + 4);
}

/** An offset with the COPIED flag; offsets stay below 2^47 here, so the high word has room. */
function writeCopiedOffset(buf: Buffer, pos: number, offset: number): void {
  buf.writeUInt32BE((Math.floor(offset / TWO_POW_32) | COPIED_HIGH_BIT) >>> 0, pos);
  buf.writeUInt32BE(offset % TWO_POW_32, pos + 4);
}

function renderHeader(plan: Qcow2Plan, buf: Buffer, pos: number): void {
  buf.writeUInt32BE(QCOW2_MAGIC, pos);
  buf.writeUInt32BE(QCOW2_VERSION, pos + 4);
  // 8..19: no backing file
  buf.writeUInt32BE(plan.clusterBits, pos + 20);
  writeU64(buf, pos + 24, plan.virtualSize);
  // 32: no encryption
  buf.writeUInt32BE(plan.l1Entries, pos + 36);
  // An empty disk has no L1 clusters; an offset of 0 says so, as qcow2-to-stdout.py does.
  writeU64(buf, pos + 40, plan.l1Table.clusters === 0 ? 0 : plan.l1Table.offset);
  writeU64(buf, pos + 48, plan.refcountTable.offset);
  buf.writeUInt32BE(plan.refcountTable.clusters, pos + 56);
  // 60..71: no snapshots; 72..95: no incompatible, compatible or autoclear features
  buf.writeUInt32BE(Math.log2(plan.refcountBits), pos + 96);
  buf.writeUInt32BE(QCOW2_HEADER_LENGTH, pos + 100);
  // 104: compression type zlib (0) and padding; at 112 the header extension end marker, type 0 and
  // length 0: all zeros, already there in the zero-filled cluster.
}

function renderRefcountTable(plan: Qcow2Plan, tableCluster: number, buf: Buffer, pos: number): void {
  const perCluster = plan.clusterSize / 8;
  const first = tableCluster * perCluster;
  const end = Math.min(plan.refcountBlocks.clusters, first + perCluster);
  for (let i = first; i < end; i++) {
    writeU64(buf, pos + (i - first) * 8, plan.refcountBlocks.offset + i * plan.clusterSize);
  }
}

/** Refcount 1 for the first `count` entries of a block; sub-byte widths pack from bit 0 up. */
function renderRefcountBlock(plan: Qcow2Plan, block: number, buf: Buffer, pos: number): void {
  const bits = plan.refcountBits;
  const perBlock = (plan.clusterSize * 8) / bits;
  const count = Math.max(0, Math.min(perBlock, plan.hostClusters - block * perBlock));
  if (bits >= 8) {
    const width = bits / 8;
    for (let i = 0; i < count; i++) buf[pos + i * width + width - 1] = 1;
    return;
  }
  const perByte = 8 / bits;
  // 1-bit: 0xff, 2-bit: 0x55, 4-bit: 0x11, i.e. the value 1 in every slot of the byte
  let pattern = 0;
  for (let slot = 0; slot < perByte; slot++) pattern |= 1 << (slot * bits);
  const fullBytes = Math.floor(count / perByte);
  buf.fill(pattern, pos, pos + fullBytes);
  let tail = 0;
  for (let slot = 0; slot < count % perByte; slot++) tail |= 1 << (slot * bits);
  if (tail !== 0) buf[pos + fullBytes] = tail;
}

function renderL1Cluster(plan: Qcow2Plan, l1Cluster: number, buf: Buffer, pos: number): void {
  const perCluster = plan.clusterSize / 8;
  const first = l1Cluster * perCluster;
  const end = Math.min(plan.l1Entries, first + perCluster);
  const tables = plan.l2TableIndices;
  for (let r = firstRunEndingAfter(tables, first); r < tables.count && at(tables.starts, r) < end; r++) {
    const runStart = at(tables.starts, r);
    const from = Math.max(first, runStart);
    const to = Math.min(end, at(tables.ends, r));
    for (let j = from; j < to; j++) {
      const table = at(tables.before, r) + (j - runStart);
      writeCopiedOffset(buf, pos + (j - first) * 8, plan.l2Tables.offset + table * plan.clusterSize);
    }
  }
}

function renderL2Table(plan: Qcow2Plan, table: number, buf: Buffer, pos: number): void {
  const perTable = plan.clusterSize / 8;
  const tables = plan.l2TableIndices;
  const r = runAtOrdinal(tables, table);
  const l1Index = at(tables.starts, r) + (table - at(tables.before, r));
  const first = l1Index * perTable;
  const end = first + perTable;
  const runs = plan.dataClusters;
  for (let d = firstRunEndingAfter(runs, first); d < runs.count && at(runs.starts, d) < end; d++) {
    const runStart = at(runs.starts, d);
    const from = Math.max(first, runStart);
    const to = Math.min(end, at(runs.ends, d));
    for (let g = from; g < to; g++) {
      const ordinal = at(runs.before, d) + (g - runStart);
      writeCopiedOffset(buf, pos + (g - first) * 8, plan.data.offset + ordinal * plan.clusterSize);
    }
  }
}

function inRegion(cluster: number, region: { offset: number; clusters: number }, clusterSize: number): number {
  const first = region.offset / clusterSize;
  return cluster >= first && cluster < first + region.clusters ? cluster - first : -1;
}

/** Writes host cluster `cluster` (a metadata cluster) into zero-filled buf at pos. */
function renderMetadataCluster(plan: Qcow2Plan, cluster: number, buf: Buffer, pos: number): void {
  const cs = plan.clusterSize;
  let i: number;
  if (cluster === 0) renderHeader(plan, buf, pos);
  else if ((i = inRegion(cluster, plan.refcountTable, cs)) >= 0) renderRefcountTable(plan, i, buf, pos);
  else if ((i = inRegion(cluster, plan.refcountBlocks, cs)) >= 0) renderRefcountBlock(plan, i, buf, pos);
  else if ((i = inRegion(cluster, plan.l1Table, cs)) >= 0) renderL1Cluster(plan, i, buf, pos);
  else if ((i = inRegion(cluster, plan.l2Tables, cs)) >= 0) renderL2Table(plan, i, buf, pos);
  else throw new Qcow2LayoutError('bad-offset', `host cluster ${cluster} is not metadata`);
}

/** The image bytes [offset, offset + length), which must lie before the first data cluster. */
export function renderQcow2Metadata(plan: Qcow2Plan, offset: number, length: number): Buffer {
  const end = offset + length;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || end > plan.data.offset) {
    throw new Qcow2LayoutError('bad-offset', `metadata range [${offset}, ${end}) is outside [0, ${plan.data.offset})`);
  }
  const cs = plan.clusterSize;
  const out = Buffer.alloc(length);
  let scratch: Buffer | undefined;
  for (let cluster = Math.floor(offset / cs); cluster * cs < end; cluster++) {
    const clusterStart = cluster * cs;
    if (clusterStart >= offset && clusterStart + cs <= end) {
      renderMetadataCluster(plan, cluster, out, clusterStart - offset);
      continue;
    }
    // A cluster cut by the range's edge is rendered whole aside, then the wanted part copied.
    scratch = scratch === undefined ? Buffer.alloc(cs) : scratch.fill(0);
    renderMetadataCluster(plan, cluster, scratch, 0);
    const from = Math.max(offset, clusterStart);
    const to = Math.min(end, clusterStart + cs);
    scratch.copy(out, from - offset, from - clusterStart, to - clusterStart);
  }
  return out;
}
