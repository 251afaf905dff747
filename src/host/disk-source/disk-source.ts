// Where a root disk lives (a file, an RBD image) sits behind this one interface: what the
// snapshot path needs to know of the disk and how it opens it. The workflow and the export code do
// not branch on storage; they ask the disk's source. The live export is the same for every source
// (libvirt's backup job reads the disk through QEMU); the cold export, the facts and the change
// tracking are the source's own. Nothing here probes a disk: formats come from libvirt, sizes from
// libvirt or the cluster.
import type { DiskLayer, DomainDescription } from '../../contract';
import type { Domain, Libvirt } from '../../libvirt';
import { describedChain, fileDiskChain, UnsupportedSourceFormat, type ChainRoots } from '../disk-chain';
import type { DomainDisk } from '../domain-xml';
import type { HostConfig } from '../host-config';
import type { BlockdevImageSpec, FileImageSpec } from '../nbd-export';
import { FileDiskSource } from './file-source';
import { RbdDiskSource } from './rbd-source';

/** What describeDomain records of the root disk. */
export interface DiskFacts {
  /** 'qcow2' | 'raw' for files, 'rbd' for RBD images */
  sourceFormat: string;
  virtualSize: number;
  /** a file disk's layers below it, nearest first; [] for RBD */
  backingChain: DiskLayer[];
}

export interface DiskSource {
  readonly kind: 'file' | 'rbd';
  /** Names the disk itself, not its name: a disk replaced under the same name is another disk (chain tracking). */
  identity(): Promise<string>;
  /** null when libvirt can keep checkpoints (dirty bitmaps) on the disk; else why it cannot. */
  readonly checkpointRefusal: string | null;
  /** What a cold export's qemu-nbd opens: the stopped disk, read-only, every format stated. */
  readOnlyImage(): FileImageSpec | BlockdevImageSpec;
}

export type DiskSourceSettings = HostConfig['rbd'];

export interface DescribeContext {
  client: Libvirt;
  dom: Domain;
  roots: ChainRoots;
  settings: DiskSourceSettings;
}

/**
 * The root disk's source and facts, from the domain XML; null for a disk no source here reads
 * (LVM, iSCSI, a qcow2 inside RBD, another format). A file's chain comes from libvirt's
 * `<backingStore>` (disk-chain.ts) and its size from virDomainGetBlockInfo; an RBD image's size
 * from the cluster.
 */
export async function describeRootDisk(disk: DomainDisk, ctx: DescribeContext): Promise<{ source: DiskSource; facts: DiskFacts } | null> {
  if (disk.source === null) return null;
  if (disk.sourceType === 'network') {
    const source = rbdDiskOfXml(disk, ctx.settings);
    return source === null ? null : { source, facts: { sourceFormat: 'rbd', virtualSize: await source.size(), backingChain: [] } };
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
  if (description.sourceFormat === 'qcow2' || description.sourceFormat === 'raw') return new FileDiskSource(describedChain(description));
  throw new UnsupportedSourceFormat(description.sourceFormat);
}
