// Where a root disk lives (a file, an RBD image) sits behind this one interface: what the
// snapshot path needs to know of the disk and how it opens it. The workflow and the export code do
// not branch on storage; they ask the disk's source. The live export is the same for every source
// (libvirt's backup job reads the disk through QEMU); the cold export, the facts and the change
// tracking are the source's own. Nothing here probes a disk: formats come from libvirt, sizes from
// libvirt or the cluster.
import type { DiskLayer } from '../../contract';
import type { Domain, Libvirt } from '../../libvirt';
import type { ChainRoots } from '../disk-chain';
import type { HostConfig } from '../host-config';
import type { BlockdevImageSpec, FileImageSpec } from '../nbd-export';
import type { BlockDeviceSettings } from './block-device-settings';
import type { StorageSnapshots } from './storage-snapshots';

/** What describeDomain records of the root disk. */
export interface DiskFacts {
  /** 'qcow2' | 'raw' for files, 'rbd' for RBD images, 'lvm' for block devices (the seed's words) */
  sourceFormat: string;
  virtualSize: number;
  /** a file disk's layers below it, nearest first; [] for RBD and block devices */
  backingChain: DiskLayer[];
}

export interface DiskSource {
  readonly kind: 'file' | 'rbd' | 'block';
  /** Names the disk itself, not its name: a disk replaced under the same name is another disk (chain tracking). */
  identity(): Promise<string>;
  /** null when libvirt can keep checkpoints (dirty bitmaps) on the disk; else why it cannot. */
  readonly checkpointRefusal: string | null;
  /** What a cold export's qemu-nbd opens: the stopped disk, read-only, every format stated. */
  readOnlyImage(): FileImageSpec | BlockdevImageSpec;
  /**
   * Present when the storage tracks changes itself (RBD snapshots and `rbd diff`): a chained live
   * snapshot is then exported from one of its points, and its changes come from the storage.
   * Absent: libvirt's checkpoints, when `checkpointRefusal` allows them.
   */
  readonly snapshots?: StorageSnapshots;
}

export type DiskSourceSettings = HostConfig['rbd'];

export interface DescribeContext {
  client: Libvirt;
  dom: Domain;
  roots: ChainRoots;
  settings: DiskSourceSettings;
  /** absent: no block device may be read */
  blockDevices?: BlockDeviceSettings;
}
