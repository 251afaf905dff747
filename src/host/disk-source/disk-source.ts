// Where a root disk lives (a file, an RBD image) sits behind this one interface: what the
// snapshot path needs to know of the disk and how it opens it. The workflow and the export code do
// not branch on storage; they ask the disk's source. The live export is the same for every source
// (libvirt's backup job reads the disk through QEMU); the cold export and the change tracking are
// the source's own.
import type { DomainDescription } from '../../contract';
import type { DomainDisk } from '../domain-xml';
import type { HostConfig } from '../host-config';
import type { BlockdevImageSpec, FileImageSpec } from '../nbd-export';
import { UnsupportedSourceFormat } from '../qemu-img-convert';
import { FileDiskSource } from './file-source';
import { RbdDiskSource } from './rbd-source';

/** What describeDomain records of the root disk: read from its own metadata with the format stated, never probed. */
export interface DiskFacts {
  /** 'qcow2' | 'raw' for files, 'rbd' for RBD images */
  sourceFormat: string;
  virtualSize: number;
  backingPath: string | null;
  backingFormat: string | null;
}

export interface DiskSource {
  readonly kind: 'file' | 'rbd';
  inspect(): Promise<DiskFacts>;
  /** Names the disk itself, not its name: a disk replaced under the same name is another disk (chain tracking). */
  identity(): Promise<string>;
  /** null when libvirt can keep checkpoints (dirty bitmaps) on the disk; else why it cannot. */
  readonly checkpointRefusal: string | null;
  /** What a cold export's qemu-nbd opens: the stopped disk, read-only, every format stated. */
  readOnlyImage(): FileImageSpec | BlockdevImageSpec;
}

export type DiskSourceSettings = HostConfig['rbd'];

/** The source of a disk as the domain XML describes it; null for one this host cannot read (LVM, iSCSI, another format). */
export function diskSourceOfXml(disk: Pick<DomainDisk, 'sourceType' | 'source' | 'driverType' | 'network'>, settings: DiskSourceSettings): DiskSource | null {
  if (disk.source === null) return null;
  if (disk.sourceType === 'network') return disk.network?.protocol === 'rbd' && disk.driverType === 'raw' ? RbdDiskSource.fromName(disk.source, settings) : null;
  if (disk.sourceType !== 'file') return null;
  const format = disk.driverType ?? 'raw';
  return format === 'qcow2' || format === 'raw' ? new FileDiskSource(disk.source, format) : null;
}

/** The source of the disk a recorded description names (the activities after describeDomain). */
export function diskSourceOf(description: Pick<DomainDescription, 'diskPath' | 'sourceFormat'>, settings: DiskSourceSettings): DiskSource {
  if (description.sourceFormat === 'rbd') return RbdDiskSource.fromName(description.diskPath, settings);
  if (description.sourceFormat === 'qcow2' || description.sourceFormat === 'raw') return new FileDiskSource(description.diskPath, description.sourceFormat);
  throw new UnsupportedSourceFormat(description.sourceFormat);
}
