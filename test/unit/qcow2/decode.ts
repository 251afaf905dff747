// An independent qcow2 reader for the tests, written from docs/interop/qcow2.txt rather than from
// the writer: it walks the image's own pointers and checks that refcounts match what is reachable.
// Only allocated L2 tables are visited, so a multi-TiB virtual disk decodes in milliseconds.

export interface DecodedImage {
  readonly version: number;
  readonly clusterSize: number;
  readonly virtualSize: number;
  readonly refcountBits: number;
  readonly headerLength: number;
  readonly features: { incompatible: bigint; compatible: bigint; autoclear: bigint };
  /** guest cluster index → host offset, for every allocated guest cluster */
  readonly mapping: Map<number, number>;
  /** problems found; empty for a consistent image */
  readonly problems: string[];
}

const COPIED = 1n << 63n;
const OFFSET_MASK = 0x00fffffffffffe00n;

function u64(image: Buffer, pos: number): bigint {
  return image.readBigUInt64BE(pos);
}

function refcountAt(image: Buffer, block: number, index: number, bits: number): number {
  if (bits >= 8) {
    const width = bits / 8;
    return Number(image.readUIntBE(block + index * width + Math.max(0, width - 6), Math.min(width, 6)));
  }
  const perByte = 8 / bits;
  const byte = image[block + Math.floor(index / perByte)] ?? 0;
  return (byte >> ((index % perByte) * bits)) & ((1 << bits) - 1);
}

export function decodeQcow2(image: Buffer): DecodedImage {
  const problems: string[] = [];
  if (image.readUInt32BE(0) !== 0x514649fb) problems.push('bad magic');
  const version = image.readUInt32BE(4);
  if (u64(image, 8) !== 0n) problems.push('has a backing file');
  const clusterSize = 2 ** image.readUInt32BE(20);
  const virtualSize = Number(u64(image, 24));
  if (image.readUInt32BE(32) !== 0) problems.push('encrypted');
  const l1Size = image.readUInt32BE(36);
  const l1Offset = Number(u64(image, 40));
  const refTableOffset = Number(u64(image, 48));
  const refTableClusters = image.readUInt32BE(56);
  if (image.readUInt32BE(60) !== 0) problems.push('has snapshots');
  const features = { incompatible: u64(image, 72), compatible: u64(image, 80), autoclear: u64(image, 88) };
  const refcountBits = 2 ** image.readUInt32BE(96);
  const headerLength = image.readUInt32BE(100);
  if (image.readUInt32BE(headerLength) !== 0) problems.push('a header extension other than the end marker');
  if (image.length % clusterSize !== 0) problems.push('file length is not whole clusters');

  const hostClusters = image.length / clusterSize;
  const references = new Map<number, string>();
  const reference = (offset: number, what: string): void => {
    if (offset % clusterSize !== 0) problems.push(`${what} at unaligned ${offset}`);
    if (offset + clusterSize > image.length) problems.push(`${what} at ${offset} beyond the file`);
    const cluster = offset / clusterSize;
    const earlier = references.get(cluster);
    if (earlier !== undefined) problems.push(`host cluster ${cluster} used twice: ${earlier} and ${what}`);
    references.set(cluster, what);
  };
  reference(0, 'header');
  for (let i = 0; i < refTableClusters; i++) reference(refTableOffset + i * clusterSize, `refcount table ${i}`);
  const l1Clusters = Math.ceil((l1Size * 8) / clusterSize);
  for (let i = 0; i < l1Clusters; i++) reference(l1Offset + i * clusterSize, `L1 cluster ${i}`);

  const mapping = new Map<number, number>();
  const l2Entries = clusterSize / 8;
  for (let j = 0; j < l1Size; j++) {
    const entry = u64(image, l1Offset + j * 8);
    if (entry === 0n) continue;
    if ((entry & COPIED) === 0n) problems.push(`L1 entry ${j} without COPIED`);
    const l2 = Number(entry & OFFSET_MASK);
    reference(l2, `L2 table for L1 ${j}`);
    for (let k = 0; k < l2Entries; k++) {
      const e = u64(image, l2 + k * 8);
      if (e === 0n) continue;
      const guestCluster = j * l2Entries + k;
      if ((e & COPIED) === 0n || (e & (1n << 62n)) !== 0n || (e & 1n) !== 0n) problems.push(`L2 entry for guest cluster ${guestCluster} has odd flags`);
      if (guestCluster * clusterSize >= virtualSize) problems.push(`guest cluster ${guestCluster} beyond the virtual size`);
      const host = Number(e & OFFSET_MASK);
      reference(host, `data of guest cluster ${guestCluster}`);
      mapping.set(guestCluster, host);
    }
  }

  const perBlock = (clusterSize * 8) / refcountBits;
  const tableEntries = (refTableClusters * clusterSize) / 8;
  const blocks: number[] = [];
  for (let i = 0; i < tableEntries; i++) {
    const block = Number(u64(image, refTableOffset + i * 8));
    if (block === 0) continue;
    reference(block, `refcount block ${i}`);
    blocks[i] = block;
  }
  for (let c = 0; c < Math.max(hostClusters, references.size); c++) {
    const block = blocks[Math.floor(c / perBlock)];
    const refcount = block === undefined ? 0 : refcountAt(image, block, c % perBlock, refcountBits);
    const expected = references.has(c) ? 1 : 0;
    if (refcount !== expected) problems.push(`host cluster ${c} has refcount ${refcount}, expected ${expected}`);
  }
  if (references.size !== hostClusters) problems.push(`${hostClusters - references.size} host clusters nothing points at`);
  return { version, clusterSize, virtualSize, refcountBits, headerLength, features, mapping, problems };
}
