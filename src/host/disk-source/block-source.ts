// The block-device disk source: a root disk that is a raw block device (Nova's images_type=lvm,
// `<disk type='block'>` on `/dev/<images_volume_group>/<instance uuid>_disk`, or its dm-crypt
// mapping `/dev/mapper/<instance uuid>_disk-dmcrypt` with ephemeral storage encryption). A block
// device is the host's: only one under the roots the operator named (SNAP_BLOCK_DEVICE_PATHS,
// SNAP_LVM_VOLUME_GROUP) is read, its directory resolved through symlinks, and what its name
// resolves to must really be a block device under /dev. Its format is libvirt's (raw, as Nova
// writes it; anything else is refused), its size virDomainGetBlockInfo's, and a cold export opens
// it read-only through QEMU's host_device driver with raw stated: nothing is probed.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../contract';
import { assertSafePath, HostPathError } from '../../fs/safe-path';
import type { DomainDisk } from '../domain-xml';
import type { BlockdevImageSpec } from '../nbd-export';
import { VG_NAME_RE, type BlockDeviceSettings } from './block-device-settings';
import type { DiskSource } from './disk-source';

/** The seed's word for a block-device disk (libvirt_utils.get_disk_type: any path under /dev). */
export const BLOCK_SOURCE_FORMAT = 'lvm';

/** The settings that name the block devices a snapshot may read. */
export const BLOCK_DEVICE_SETTINGS = 'SNAP_BLOCK_DEVICE_PATHS or SNAP_LVM_VOLUME_GROUP';

export const BLOCK_CHECKPOINT_REFUSAL = 'libvirt keeps no checkpoints on a raw block device: each snapshot is read whole';

/** Where block-device disks may be, and whether they may be snapshotted live. */
export const NO_BLOCK_DEVICES: BlockDeviceSettings = { roots: [], allowLive: false };

/** A block-device disk we will not read: refused before any tool opens it, and again on a retry. */
export class BlockDeviceRefused extends Error {
  override readonly name = 'BlockDeviceRefused';
  readonly retryable = false;
}

/** What Nova's LVM naming says of a device path. */
export interface NovaLvmName {
  instanceUuid: string;
  /** Nova's disk name, unescaped: 'disk' for the root disk, 'disk.local', 'disk.swap', … */
  diskName: string;
  /** the volume group of /dev/<vg>/<lv>; null for a /dev/mapper name */
  volumeGroup: string | null;
  /** a dm-crypt mapping (ephemeral storage encryption) */
  encrypted: boolean;
}

/** nova.virt.libvirt.storage.dmcrypt's volume_name suffix. */
const DMCRYPT_SUFFIX = '-dmcrypt';
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
// Nova's LV name: `<uuid>_<disk name>`, the disk name's `_` doubled (Lvm.escape).
const LV_NAME_RE = new RegExp(`^(${UUID})_((?:[A-Za-z0-9.-]|__)+?)(${DMCRYPT_SUFFIX})?$`);

/**
 * Nova's images_type=lvm naming of a device path: `/dev/<vg>/<uuid>_<disk>`, or the dm-crypt
 * mapping Nova opens over it, `/dev/mapper/<uuid>_<disk>-dmcrypt`; null for any other path.
 */
export function novaLvmName(devicePath: string): NovaLvmName | null {
  const parts = devicePath.split('/');
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== 'dev') return null;
  const [, , dir = '', name = ''] = parts;
  const match = LV_NAME_RE.exec(name);
  if (match === null) return null;
  const named = { instanceUuid: match[1] ?? '', diskName: (match[2] ?? '').replaceAll('__', '_'), encrypted: match[3] !== undefined };
  // Nova opens only its dm-crypt mappings under /dev/mapper; an LV there is spelt <vg>-<lv>.
  if (dir === 'mapper') return named.encrypted ? { ...named, volumeGroup: null } : null;
  return VG_NAME_RE.test(dir) ? { ...named, volumeGroup: dir } : null;
}

/**
 * Whether a disk's data is encrypted ephemeral storage, which is never snapshotted live (the
 * seed's rule, which its note keeps for the day LVM is no longer cold only): the host's setting
 * (Nova's [ephemeral_storage_encryption] enabled) or a dm-crypt device (Nova's `-dmcrypt` name).
 */
export function isEncryptedEphemeral(hostSetting: boolean, disk: Pick<DomainDisk, 'sourceType' | 'source'>): boolean {
  if (hostSetting) return true;
  if (disk.sourceType !== 'block' || disk.source === null) return false;
  // Any dm-crypt mapping of Nova's naming, wherever the operator's roots put it.
  return path.basename(disk.source).endsWith(DMCRYPT_SUFFIX);
}

/** The hint a refusal gives: the setting that would admit Nova's volume group. */
function settingHint(devicePath: string): string {
  const vg = novaLvmName(devicePath)?.volumeGroup;
  return vg ? ` (Nova's LVM disk in volume group ${vg}: SNAP_LVM_VOLUME_GROUP=${vg})` : '';
}

async function resolved(p: string, what: string): Promise<string> {
  try {
    return await realpath(p);
  } catch (err) {
    throw new BlockDeviceRefused(`${what} ${p} cannot be resolved: ${errnoCode(err) ?? String(err)}`);
  }
}

/**
 * A block device path, refused unless it is spelt canonically, its directory (symlinks resolved)
 * is one of the roots, and what it names (LVM's names are symlinks to /dev/dm-N) is a block device
 * under /dev. Returns the device it resolves to.
 */
export async function confineBlockDevice(devicePath: string, roots: readonly string[]): Promise<string> {
  try {
    assertSafePath(devicePath);
  } catch (err) {
    if (err instanceof HostPathError) throw new BlockDeviceRefused(`block device refused: ${err.message}`);
    throw err;
  }
  if (roots.length === 0) {
    throw new BlockDeviceRefused(`block device ${devicePath} refused: no block device may be read until ${BLOCK_DEVICE_SETTINGS} names where they are${settingHint(devicePath)}`);
  }
  const dir = await resolved(path.dirname(devicePath), 'the directory of block device');
  let admitted = false;
  for (const root of roots) if ((await realpath(root).catch(() => null)) === dir) admitted = true;
  if (!admitted) throw new BlockDeviceRefused(`block device ${devicePath} is not in ${roots.join(', ')} (${BLOCK_DEVICE_SETTINGS})${settingHint(devicePath)}`);
  const device = await resolved(devicePath, 'block device');
  if (!device.startsWith('/dev/')) throw new BlockDeviceRefused(`block device ${devicePath} resolves to ${device}, outside /dev`);
  if (!(await stat(device)).isBlockDevice()) throw new BlockDeviceRefused(`${devicePath} (${device}) is not a block device`);
  return device;
}

/** Nova's block disk: `<disk type='block'>` whose format by libvirt's word is raw (absent: libvirt's default, raw). */
export async function blockDiskOfXml(disk: Pick<DomainDisk, 'sourceType' | 'source' | 'driverType' | 'target'>, settings: BlockDeviceSettings): Promise<BlockDiskSource> {
  if (disk.sourceType !== 'block' || disk.source === null) throw new BlockDeviceRefused(`disk ${disk.target} is not a block device`);
  const format = disk.driverType ?? 'raw';
  if (format !== 'raw') throw new BlockDeviceRefused(`block device ${disk.source} of ${disk.target} is ${format} by libvirt's word: only raw block devices are read`);
  await confineBlockDevice(disk.source, settings.roots);
  return new BlockDiskSource(disk.source);
}

export class BlockDiskSource implements DiskSource {
  readonly kind = 'block';
  readonly checkpointRefusal = BLOCK_CHECKPOINT_REFUSAL;

  constructor(readonly devicePath: string) {
    assertSafePath(devicePath);
  }

  /** The device's numbers: an LV removed and made again may get other ones, never a file's inode. */
  async identity(): Promise<string> {
    const st = await stat(this.devicePath, { bigint: true });
    return `block:${st.rdev}`;
  }

  /** QEMU's host_device driver (it refuses anything but a device) under raw: both drivers stated, nothing probed. */
  readOnlyImage(): BlockdevImageSpec {
    return { blockdev: `json:${JSON.stringify({ driver: 'raw', file: { driver: 'host_device', filename: assertSafePath(this.devicePath) } })}` };
  }
}
