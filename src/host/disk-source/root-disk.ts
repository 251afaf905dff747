// Which source a root disk has: read from the domain XML when the domain is described, and from
// the recorded description by the activities after it. The only place that names each source.
import type { DomainDescription } from '../../contract';
import { describedChain, fileDiskChain, UnsupportedSourceFormat } from '../disk-chain';
import type { DomainDisk } from '../domain-xml';
import type { DescribeContext, DiskFacts, DiskSource, DiskSourceSettings } from './disk-source';
import { BLOCK_SOURCE_FORMAT, BlockDiskSource, blockDiskOfXml, NO_BLOCK_DEVICES } from './block-source';
import { FileDiskSource } from './file-source';
import { RbdDiskSource } from './rbd-source';

/**
 * The root disk's source and facts, from the domain XML; null for a disk no source here reads
 * (iSCSI, a qcow2 inside RBD, another format). A file's chain comes from libvirt's
 * `<backingStore>` (disk-chain.ts) and its size from virDomainGetBlockInfo; an RBD image's size
 * from the cluster; a block device (LVM) is confined to the configured roots or refused.
 */
export async function describeRootDisk(disk: DomainDisk, ctx: DescribeContext): Promise<{ source: DiskSource; facts: DiskFacts } | null> {
  if (disk.source === null) return null;
  if (disk.sourceType === 'network') {
    const source = rbdDiskOfXml(disk, ctx.settings);
    return source === null ? null : { source, facts: { sourceFormat: 'rbd', virtualSize: await source.size(), backingChain: [] } };
  }
  if (disk.sourceType === 'block') {
    const source = await blockDiskOfXml(disk, ctx.blockDevices ?? NO_BLOCK_DEVICES);
    const { capacity } = await ctx.client.domainGetBlockInfo(ctx.dom, disk.target);
    return { source, facts: { sourceFormat: BLOCK_SOURCE_FORMAT, virtualSize: capacity, backingChain: [] } };
  }
  const format = disk.driverType ?? 'raw';
  if (disk.sourceType !== 'file' || (format !== 'qcow2' && format !== 'raw')) return null;
  const chain = await fileDiskChain(disk, ctx.roots);
  const { capacity } = await ctx.client.domainGetBlockInfo(ctx.dom, disk.target);
  return { source: new FileDiskSource(chain), facts: { sourceFormat: chain.top.format, virtualSize: capacity, backingChain: chain.backing } };
}

/** Nova's RBD disk: a raw network disk of protocol rbd named "pool/image" (checked); null for any other network disk. */
export function rbdDiskOfXml(disk: Pick<DomainDisk, 'sourceType' | 'source' | 'driverType' | 'network'>, settings: DiskSourceSettings): RbdDiskSource | null {
  if (disk.sourceType !== 'network' || disk.source === null || disk.network?.protocol !== 'rbd' || disk.driverType !== 'raw') return null;
  return RbdDiskSource.fromName(disk.source, settings);
}

/** The source of the disk a recorded description names (the activities after describeDomain). */
export function diskSourceOf(description: Pick<DomainDescription, 'diskPath' | 'sourceFormat' | 'backingChain'>, settings: DiskSourceSettings): DiskSource {
  if (description.sourceFormat === 'rbd') return RbdDiskSource.fromName(description.diskPath, settings);
  // Confined when the domain was described; QEMU's host_device driver refuses anything but a device.
  if (description.sourceFormat === BLOCK_SOURCE_FORMAT) return new BlockDiskSource(description.diskPath);
  if (description.sourceFormat === 'qcow2' || description.sourceFormat === 'raw') return new FileDiskSource(describedChain(description));
  throw new UnsupportedSourceFormat(description.sourceFormat);
}
