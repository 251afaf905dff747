// What the host may read as a block-device (LVM) root disk: the operator's settings, apart from the
// source that reads them, so the host's config and the disk-source interface can name them.

export interface BlockDeviceSettings {
  /** directories (Nova's /dev/<images_volume_group>, /dev/mapper, …) whose block devices may be read; [] refuses every block device */
  roots: readonly string[];
  /** live through the backup job when the disk is not encrypted; false keeps them cold, as the seed does */
  allowLive: boolean;
}

// LVM's own rule for a volume group's name.
export const VG_NAME_RE = /^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,126}$/;
