// Whether a snapshot may be live: the seed's rule (libvirt/QEMU new enough, live snapshots not
// disabled, no encrypted ephemeral storage) over the disk sources the host reads. A pure function,
// so the rule is tested as a table.
import type { DiskSource } from './disk-source/disk-source';

export interface LivePolicyFacts {
  /** the root disk's source; null for a disk no source reads */
  source: DiskSource['kind'] | null;
  /** libvirt and QEMU are new enough for live snapshots (Nova's MIN_*_LIVESNAPSHOT_VERSION) */
  liveVersions: boolean;
  /** libvirt's backup job can serve the disk (src/host/domain-inspection.ts) */
  backupCapable: boolean;
  /** encrypted ephemeral storage: the host's setting or a dm-crypt device */
  encrypted: boolean;
  /** Nova's disable_libvirt_livesnapshot */
  disableLiveSnapshot: boolean;
  /** the operator lets block devices (LVM) go live through the backup job */
  allowLiveBlockDevices: boolean;
}

/**
 * The block-copy path copies into a local qcow2 delta and serves files only; an RBD disk or a
 * block device is live only through the backup job, and a block device only when the operator
 * allows it (the seed keeps LVM cold). Encrypted ephemeral storage is never live, whatever else
 * holds: the seed's rule, kept for the day LVM goes live.
 */
export function isLiveCapable(f: LivePolicyFacts): boolean {
  if (f.encrypted || f.disableLiveSnapshot || !f.liveVersions) return false;
  switch (f.source) {
    case 'file':
      return true;
    case 'rbd':
      return f.backupCapable;
    case 'block':
      return f.backupCapable && f.allowLiveBlockDevices;
    case null:
      return false;
  }
}

/**
 * Whether a cold snapshot of a running guest may restart it with a backup job on its disk before
 * the stream (src/host/saved-guest-restart.ts): the job then runs beside the running guest as a
 * live snapshot's does, so the live rule holds for the encryption (the job's copy-before-write
 * scratch would hold the guest's plaintext) and the versions. Nova's disable_libvirt_livesnapshot
 * and the operator's choice to keep block devices cold do not apply: both are about a point in
 * time taken while the guest runs, and this one is the save's, taken stopped.
 */
export function mayRestartWithBackupJob(f: LivePolicyFacts): boolean {
  return f.backupCapable && isLiveCapable({ ...f, disableLiveSnapshot: false, allowLiveBlockDevices: true });
}
