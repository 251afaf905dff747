// The activity contracts the workflows schedule. The workflows import this file for its types only;
// the factories in src/activities/ implement them on the control and host workers.
import type { PowerState, TaskState } from './instance-states';
import type { InventoryDomain, InventoryVolume } from './inventory';
import type { ChainPlan, ChainRecordInput, SnapshotChainFacts } from './snapshot-chain';
import type { PruneOutcome, PruneRequest } from './backup-retention';
import type { RotationOutcome, SnapshotDataPath, SnapshotMode } from './snapshot-workflow';
import type { UploadedImage } from './uploaded-image';
import type { VolumeControlActivities, VolumeHostActivities } from './volume-snapshot-activities';

export interface SnapshotInstanceInfo {
  uuid: string;
  /** libvirt domain name */
  domainName: string;
  host: string;
  /** null: the domain names no owner (admin-only) */
  projectId: string | null;
  powerState: PowerState;
  imageRef: string | null;
  /** the disks the host names as Cinder volumes (unconfirmed); absent in histories recorded before them */
  volumes?: InventoryVolume[];
}

export interface SnapshotImageRef {
  imageId: string;
  status: string;
}

export type SnapshotNotification = 'snapshot.start' | 'snapshot.end' | 'snapshot.error';

/** Activities on `snapshot-control`: instance store, image records, notifications. */
export interface ControlActivities extends VolumeControlActivities {
  /** Nova's compute API `_create_image` for runs started without an image (ops, Temporal UI). */
  createSnapshotImage(input: { instanceUuid: string; name: string; metadata: Record<string, string>; backupType?: string; backupScheduleId?: string }): Promise<SnapshotImageRef>;
  /** Compare-and-set of task_state; returns the instance as stored after the change. */
  setTaskState(input: { instanceUuid: string; taskState: TaskState; expected: TaskState[] }): Promise<SnapshotInstanceInfo>;
  savePowerState(input: { instanceUuid: string; powerState: PowerState }): Promise<void>;
  /** Nova's instance.snapshot start/end/error notifications; end and error also feed the metrics. */
  notifySnapshot(input: {
    instanceUuid: string;
    imageId?: string;
    event: SnapshotNotification;
    mode?: SnapshotMode;
    durationMs?: number;
    /** snapshot.end: whether the image is quiesced, and the freeze window */
    quiesced?: boolean;
    freezeWindowMs?: number | null;
    /** snapshot.end: full or incremental, and why */
    chain?: SnapshotChainFacts;
    step?: string;
    error?: string;
    /** a backup's backup_type: the backup counters go by it (absent for snapshots and older histories) */
    backupType?: string;
  }): Promise<void>;
  /** Before a live one-pass snapshot: the newest recorded snapshot whose image is active, or why none. */
  planChain(input: { instanceUuid: string }): Promise<ChainPlan>;
  /** After the export closed: the snapshot joins the instance's chain; older checkpoints are retired. */
  recordChain(input: ChainRecordInput): Promise<void>;
  /** Compensation: the image goes away unless its bytes are complete (active). */
  deleteImageUnlessActive(input: { imageId: string }): Promise<{ deleted: boolean; status: string | null }>;
  /**
   * Compensation (Nova's reverts_task_state): task_state back to None, but only from one of the
   * snapshot states — never over 'deleting' or another operation's task.
   */
  resetTaskState(input: { instanceUuid: string }): Promise<void>;
  /**
   * Nova's _rotate_backups, once the backup `imageId` is active: the instance's active backups of
   * this type, in the new image's project, newest first; all beyond `rotation` are deleted. The new
   * image counts as the newest, so it goes only when rotation is 0. Idempotent: a repeat after a
   * crash deletes what the first attempt left.
   */
  rotateBackups(input: { instanceUuid: string; imageId: string; backupType: string; rotation: number }): Promise<RotationOutcome>;
  /**
   * After the rotation of a scheduled backup with a retention: PBS's prune over the same backups
   * (this instance, this type, the new image's project). The new image is always kept. Idempotent:
   * a repeat after a crash lists afresh and deletes what the first attempt left.
   */
  pruneBackups(input: PruneRequest): Promise<PruneOutcome>;
  /** A host's domain report (the reportInventory workflow): new instances appear, known ones update. */
  recordInventory(input: { host: string; domains: InventoryDomain[] }): Promise<{ instances: number }>;
}

/**
 * One layer of a file disk's backing chain, with the format libvirt records for it: every qemu tool
 * that opens the layer is told this format, never left to probe it (a raw disk's first bytes are
 * the guest's own and can pose as a qcow2 header).
 */
export interface DiskLayer {
  path: string;
  format: 'qcow2' | 'raw';
}

export interface DomainDescription {
  powerState: PowerState;
  /** the root disk (vda, else the first disk) */
  diskPath: string;
  diskTarget: string;
  sourceFormat: string;
  /** format the image will be written in (configured, else the source's; lvm/rbd → raw) */
  imageFormat: 'qcow2' | 'raw';
  /**
   * The layers below the root disk, nearest first (Nova's instance disks are overlays on the image
   * cache), each confined to the instance or image-cache directory. Absent in descriptions
   * recorded before it existed: the file path refuses those rather than guess a chain.
   */
  backingChain?: DiskLayer[];
  /** the disk's size as libvirt reports it (virDomainGetBlockInfo's capacity), never a header's claim */
  virtualSize: number;
  virtType: string;
  /** libvirt/QEMU new enough, a source that may go live, no encrypted ephemeral storage, not disabled (src/host/live-policy.ts) */
  liveCapable: boolean;
  /**
   * libvirt and QEMU have the backup API and a disk source reads the disk (file, RBD, block
   * device), encrypted or not: the one-pass data path, live or cold. Absent in
   * descriptions recorded before it existed, which replay on the block-copy path.
   */
  backupCapable?: boolean;
  /**
   * The host would try Nova's direct snapshot first: the disk is in RBD and the host names Glance's
   * RBD pool (SNAP_GLANCE_RBD_POOL). Absent in descriptions recorded before it existed.
   */
  directSnapshot?: boolean;
  /**
   * A cold snapshot of the guest running may restart it paused from its managed save with a backup
   * job on its disk and resume it before the stream (SNAP_COLD_RESUME_BEFORE_STREAM, on by default, and
   * mayRestartWithBackupJob for the source). Absent where it does not apply, and in descriptions recorded before it.
   */
  coldRestart?: boolean;
}

/**
 * Nova's direct snapshot (imagebackend's Rbd.direct_snapshot): done, with the image active at the
 * clone's location; or not taken, with why, and nothing of it left in the cluster (the workflow
 * then streams, as Nova falls back to its generic path).
 */
export type DirectSnapshotOutcome =
  | { done: true; image: UploadedImage; location: string; quiesced: boolean; freezeWindowMs: number | null; quiesceError?: string }
  | { done: false; reason: string };

/** The point-in-time export a one-pass snapshot streams from (see src/host/snapshot-export.ts). */
export interface SnapshotExport extends Partial<SnapshotChainFacts> {
  /** names the export's point in time; a new export gets a new id */
  exportId: string;
  dataPath: Extract<SnapshotDataPath, 'backup-job' | 'qemu-nbd'>;
  socketPath: string;
  exportName: string;
  virtualSize: number;
  /** bytes of the image the writer will produce from this export */
  imageSize: number;
  quiesced: boolean;
  freezeWindowMs: number | null;
  quiesceError?: string;
  /** cold: the guest runs again beside the export's backup job (restarted from its save); absent otherwise */
  guestResumed?: boolean;
}

export interface StreamedImage extends UploadedImage, Partial<SnapshotChainFacts> {
  dataPath: SnapshotExport['dataPath'];
  /** the export streamed (a new one when the recorded one was gone) */
  exportId: string;
  /** the committed offset this attempt resumed from (0: from the start); a named upload's counts staged chunk names, 32 bytes a slot */
  resumedFrom: number;
  bytesSent: number;
  logicalDigest: string;
  /** quiesce facts of the export actually streamed */
  quiesced: boolean;
  freezeWindowMs: number | null;
  quiesceError?: string;
}

export interface ExtractedSnapshot {
  path: string;
  size: number;
  format: 'qcow2' | 'raw';
  /** live only: whether the guest agent froze the filesystems (else the image is crash-consistent) */
  quiesced: boolean;
  /** live only: freeze → thaw in ms, null when nothing was frozen */
  freezeWindowMs: number | null;
  /** why a live copy is crash-consistent (no agent, agent timeout or error) */
  quiesceError?: string;
}

/** Activities on `snapshot-host-<host>`: everything that touches libvirt or the extracted file. */
export interface HostActivities extends VolumeHostActivities {
  getDomainPowerState(input: { domainName: string; instanceUuid: string }): Promise<PowerState>;
  describeDomain(input: { domainName: string; instanceUuid: string }): Promise<DomainDescription>;
  /** blockJobAbort probe: false when the domain refuses block jobs (VIR_ERR_CONFIG_UNSUPPORTED). */
  probeLiveSnapshot(input: { domainName: string; diskTarget: string }): Promise<boolean>;
  /** Cold path: detach PCI host devices and SR-IOV ports from the live domain, then managedSave. */
  prepareColdSnapshot(input: { domainName: string; powerState: PowerState }): Promise<{ detachedDevices: number }>;
  extractSnapshot(input: {
    domainName: string;
    workDirKey: string;
    mode: SnapshotMode;
    description: DomainDescription;
  }): Promise<ExtractedSnapshot>;
  /** Recreate the domain in its prior power state and re-attach devices; idempotent, retried forever. */
  restoreGuest(input: {
    domainName: string;
    priorPowerState: PowerState;
    /** a guest that ran before and is found paused is resumed (the run may have restarted it paused) */
    resumePaused?: boolean;
  }): Promise<{ recreated: boolean; reattached: number }>;
  uploadSnapshot(input: { imageId: string; path: string; format: 'qcow2' | 'raw' }): Promise<UploadedImage>;
  /** One pass, step 1 (the seed's extract): the point-in-time export, found again when it is still served. */
  openSnapshotExport(input: {
    domainName: string;
    workDirKey: string;
    mode: SnapshotMode;
    description: DomainDescription;
    chain?: ChainPlan;
    /** cold, the guest was running and is saved: cut with a backup job on the restarted guest, then resume it (src/host/saved-guest-restart.ts) */
    restartSavedGuest?: boolean;
  }): Promise<SnapshotExport>;
  /** One pass, step 2 (the seed's upload): export → image writer → resumable upload → verified commit. */
  streamSnapshot(input: { domainName: string; workDirKey: string; mode: SnapshotMode; description: DomainDescription; imageId: string }): Promise<StreamedImage>;
  /** Before the stream, where the description says it may: Nova's direct snapshot, inside the cluster (src/host/direct-snapshot.ts). */
  directSnapshot(input: { domainName: string; mode: SnapshotMode; description: DomainDescription; imageId: string }): Promise<DirectSnapshotOutcome>;
  /**
   * The direct snapshot's compensation: removes `direct-<image id>` on the disk and `<pool>/<image id>`
   * unless Glance holds the copy; idempotent, nothing to do where the direct snapshot does not apply.
   */
  discardDirectSnapshot(input: { description: DomainDescription; imageId: string }): Promise<{ removed: boolean }>;
  /**
   * Ends the export (our backup job, our qemu-nbd) and removes the run's work dir; idempotent, also
   * the compensation. With `discardPointOf` (a failed live run's compensation) the run's point in
   * time in the disk's storage (an RBD snapshot named for the run) goes too, so none of ours is
   * left; nothing more for disks whose changes libvirt tracks.
   */
  closeSnapshotExport(input: { domainName: string; workDirKey: string; discardPointOf?: DomainDescription }): Promise<{ discardedPoint?: boolean } | void>;
  removeSnapshotWorkDir(input: { workDirKey: string }): Promise<void>;
  /**
   * Retention: deletes the domain's other checkpoints of ours (their bitmaps merge away), keeps
   * `keep` and answers its description for the store; for a disk whose storage tracks changes (the
   * description says which), its other points in time of ours (RBD snapshots). Never fails the
   * snapshot: an error is reported.
   */
  retainCheckpoints(input: { domainName: string; keep: string; description?: DomainDescription }): Promise<CheckpointRetention>;
  /**
   * closeSnapshotExport then retainCheckpoints in one step, for a live run that keeps checkpoint
   * `keep`: one activity, one domain lookup. The export is ended first (the retention deletes
   * checkpoints only once no job of ours reads the disk), and the run's work dir is removed after
   * the answer (by the work-dir sweep once the run closed, if the worker dies before). A close that
   * fails fails the attempt (retried: both halves are idempotent); the retention never does, as
   * retainCheckpoints.
   */
  closeExportAndRetain(input: { domainName: string; workDirKey: string; keep: string; description: DomainDescription }): Promise<CheckpointRetention>;
}

/** What retention did: the kept point's description for the store (null: none to record), what it deleted, and why it stopped if it failed. */
export interface CheckpointRetention {
  checkpointXml: string | null;
  deleted: string[];
  error?: string;
}
