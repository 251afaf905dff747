// The RBD disk source: Nova's images_type=rbd, a raw image `<pool>/<instance uuid>_disk` that
// libvirt opens as a network disk. The host reaches the cluster as Nova's settings say
// (SNAP_RBD_CEPH_CONF, SNAP_RBD_USER); its size and identity are the cluster's word, never a
// header inside the disk. libvirt refuses checkpoints on raw RBD disks, so a live snapshot reads it
// whole through the backup job; a cold one reads the stopped image through a read-only qemu-nbd
// told every driver (raw over rbd), so nothing is probed.
import { checkCephUser, checkImageRef, checkSnapName, parseImageSpec, RbdClient, type CephConnection, type ImageRef } from '../../ceph';
import { assertSafePath } from '../../fs/safe-path';
import type { BlockdevImageSpec } from '../nbd-export';
import type { DiskSource, DiskSourceSettings } from './disk-source';
import { rbdSnapshots } from './rbd-snapshots';
import type { StorageSnapshots } from './storage-snapshots';

/** librados' own default id when Nova's rbd_user is unset. */
const DEFAULT_USER = 'admin';

export const RBD_CHECKPOINT_REFUSAL = 'libvirt keeps no checkpoints on a raw RBD disk: each snapshot is read whole';

export class RbdDiskSource implements DiskSource {
  readonly kind = 'rbd';
  readonly checkpointRefusal = RBD_CHECKPOINT_REFUSAL;
  readonly conn: CephConnection;
  /** Ceph's change tracking (rbd-snapshots.ts), unless SNAP_RBD_CHANGE_TRACKING is off */
  readonly snapshots?: StorageSnapshots;

  constructor(
    readonly ref: ImageRef,
    settings: DiskSourceSettings,
  ) {
    this.conn = { confPath: settings.confPath, user: settings.user ?? DEFAULT_USER };
    if (settings.changeTracking !== false) this.snapshots = rbdSnapshots(ref, this.conn, (snap) => this.readOnlyImage(snap));
  }

  /** From the "pool/image" libvirt writes as the disk's source name (checked: no other pool, no snapshot). */
  static fromName(name: string, settings: DiskSourceSettings): RbdDiskSource {
    return new RbdDiskSource(parseImageSpec(name), settings);
  }

  /** The image's virtual size, the cluster's word (never a header inside the disk). */
  async size(): Promise<number> {
    return (await new RbdClient(this.conn).info(this.ref)).size;
  }

  /** The cluster and the image's id in its pool: an image deleted and made again under the same name is another disk. */
  async identity(): Promise<string> {
    const rbd = new RbdClient(this.conn);
    const [fsid, info] = await Promise.all([rbd.fsid(), rbd.info(this.ref)]);
    return `rbd:${fsid}/${this.ref.pool}/${info.id}`;
  }

  readOnlyImage(snapshot?: string): BlockdevImageSpec {
    return { blockdev: rbdBlockdev(this.ref, this.conn, snapshot) };
  }
}

/** QEMU's raw-over-rbd node for an image (or one of its snapshots), as a `json:` filename. */
export function rbdBlockdev(ref: ImageRef, conn: CephConnection, snapshot?: string): string {
  const { pool, image } = checkImageRef(ref);
  const file: Record<string, string> = { driver: 'rbd', pool, image, conf: assertSafePath(conn.confPath), user: checkCephUser(conn.user) };
  if (snapshot !== undefined) file.snapshot = checkSnapName(snapshot);
  return `json:${JSON.stringify({ driver: 'raw', file })}`;
}
