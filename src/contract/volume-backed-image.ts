// What Nova's snapshot_volume_backed makes of a volume-backed instance's snapshot: an image with no
// data (size 0, no disk or container format) whose properties carry the block device mapping (bdm
// v2, one entry per volume, each made from its Cinder snapshot by block_device.snapshot_from_bdm and
// get_image_mapping), `bdm_v2` and `root_device_name`. Glance v2 keeps properties as strings, so the
// mapping is JSON text and `bdm_v2` is "True", as Nova's image API writes them. Also Nova's quota
// check before any snapshot is made (its OverQuota for `snapshots`).

export interface SnapshottedVolume {
  /** guest device name as the domain names it: vda */
  device: string;
  /** the Cinder snapshot made of the volume */
  snapshotId: string;
  /** GiB, Cinder's size of the volume */
  volumeSizeGiB: number;
  root: boolean;
}

/** One entry of Nova's image `block_device_mapping` (BlockDeviceDict.get_image_mapping of snapshot_from_bdm). */
export interface ImageBlockDeviceMapping {
  source_type: 'snapshot';
  destination_type: 'volume';
  snapshot_id: string;
  volume_size: number;
  /** 0 for the root volume; null for the others, as Nova's attached volumes have it */
  boot_index: number | null;
  device_name: string;
  device_type: 'disk';
  /** the domain does not record the BDM's bus or its delete_on_termination: Nova's defaults */
  disk_bus: null;
  delete_on_termination: false;
  guest_format: null;
  volume_id: null;
  image_id: null;
  no_device: null;
  tag: null;
  volume_type: null;
  encrypted: null;
  encryption_secret_uuid: null;
  encryption_format: null;
  encryption_options: null;
}

/** nova.block_device.prepend_dev */
export function devicePath(device: string): string {
  return device.startsWith('/dev/') ? device : `/dev/${device}`;
}

export function imageBlockDeviceMapping(volume: SnapshottedVolume): ImageBlockDeviceMapping {
  return {
    source_type: 'snapshot',
    destination_type: 'volume',
    snapshot_id: volume.snapshotId,
    volume_size: volume.volumeSizeGiB,
    boot_index: volume.root ? 0 : null,
    device_name: devicePath(volume.device),
    device_type: 'disk',
    disk_bus: null,
    delete_on_termination: false,
    guest_format: null,
    volume_id: null,
    image_id: null,
    no_device: null,
    tag: null,
    volume_type: null,
    encrypted: null,
    encryption_secret_uuid: null,
    encryption_format: null,
    encryption_options: null,
  };
}

/** The properties snapshot_volume_backed writes once every snapshot exists: the root volume's entry first. */
export function volumeBackedImageProperties(volumes: readonly SnapshottedVolume[]): Record<'block_device_mapping' | 'bdm_v2' | 'root_device_name', string> {
  const root = volumes.find((v) => v.root);
  if (root === undefined) throw new Error('a volume-backed image needs its root volume');
  const ordered = [root, ...volumes.filter((v) => v !== root)];
  return {
    block_device_mapping: JSON.stringify(ordered.map(imageBlockDeviceMapping)),
    bdm_v2: 'True',
    root_device_name: devicePath(root.device),
  };
}

/** Nova's best-effort check before any snapshot: -1 is unlimited; over it, OverQuota(overs='snapshots'). */
export function snapshotQuotaExceeded(quota: { limit: number; inUse: number }, wanted: number): boolean {
  return quota.limit > -1 && quota.inUse + wanted > quota.limit;
}
