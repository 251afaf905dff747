// What callers of the snapshotInstance workflow (API, ops, CLI, Temporal UI) and the workflow share:
// the input, the result, the step names and the progress query. Deterministic-safe.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import type { SnapshotKind } from './snapshot-chain';
import { RetentionSchema, type PruneOutcome } from './backup-retention';

export const MetadataSchema = z
  .record(z.string().min(1).max(255), z.string().max(255))
  .refine((m) => Object.keys(m).length <= 128, 'at most 128 metadata items');

/** Nova's rotation is a count of backups to keep; beyond 2^53 it means "all" just the same. */
export const MAX_ROTATION = Number.MAX_SAFE_INTEGER;

/** Nova's createBackup: the snapshot is a backup of this type, and the oldest beyond `rotation` go. */
export const BackupSpecSchema = z
  .object({
    backupType: z.string().max(255),
    rotation: z.number().int().min(0).max(MAX_ROTATION),
    /** a schedule's retention beyond the rotation (PBS's keep-X), applied after it */
    retention: RetentionSchema.optional(),
  })
  .strict();
export type BackupSpec = z.infer<typeof BackupSpecSchema>;

export const SnapshotInputSchema = z
  .object({
    instanceUuid: z.string().uuid(),
    name: z.string().min(1).max(255),
    metadata: MetadataSchema.optional(),
    imageId: z.string().uuid().optional(),
    /** present: Nova's backup_instance (task_state image_backup, then _rotate_backups) */
    backup: BackupSpecSchema.optional(),
    /** a Keystone trust id (never a token: histories are stored): the caller's roles on the instance's project, for its Cinder calls */
    trustId: z.string().regex(/^[0-9A-Za-z_-]{1,64}$/).optional(),
    /** a scheduled backup: its schedule's id, recorded on the image as backup_schedule_id */
    backupScheduleId: z.string().regex(/^[0-9A-Za-z_-]{1,200}$/).optional(),
  })
  .strict();
export type SnapshotInput = z.infer<typeof SnapshotInputSchema>;

export const SNAPSHOT_STEPS = [
  'starting',
  'create_image',
  'task_state_image_snapshot',
  'task_state_image_backup',
  'power_state',
  'notify_start',
  'lookup_domain',
  'choose_mode',
  'plan_volumes',
  'snapshot_volumes',
  'await_volume_snapshots',
  'complete_image',
  'release_trust',
  'prepare_cold',
  'task_state_pending_upload',
  'direct_snapshot',
  'plan_chain',
  'extract',
  'restore_guest',
  'task_state_uploading',
  'upload',
  'close_export',
  'retain_checkpoints',
  // close_export and retain_checkpoints as one host step: a live run that keeps a checkpoint
  'close_and_retain',
  'record_chain',
  'task_state_none',
  'notify_end',
  'rotate_backups',
  'prune_backups',
  'compensating',
  'done',
  'failed',
] as const;
export type SnapshotStep = (typeof SNAPSHOT_STEPS)[number];

export type SnapshotMode = 'live' | 'cold';

/**
 * How the bytes went: one pass from a libvirt backup job (live) or a read-only qemu-nbd of the
 * stopped disk (cold) into the image service; or, where libvirt or QEMU lack the backup API, a
 * block-copy mirror (live) or qemu-img convert (cold) into a file that is then uploaded. Or none
 * through the host at all: `rbd-direct` (Nova's direct snapshot), an RBD disk cloned inside the
 * cluster into Glance's RBD pool, and Glance handed the clone's location; `cinder-snapshot`, a
 * volume-backed instance's data staying in Cinder snapshots the image's block_device_mapping names.
 */
export type SnapshotDataPath = 'backup-job' | 'qemu-nbd' | 'block-copy' | 'convert' | 'rbd-direct' | 'cinder-snapshot';

export interface SnapshotResult {
  imageId: string;
  status: string;
  size: number;
  checksum: string;
  mode: SnapshotMode;
  /** live snapshots: false when no guest agent froze the filesystems (crash-consistent image) */
  quiesced: boolean;
  /** live snapshots: how long the guest's filesystems were frozen (ms), null when they were not */
  freezeWindowMs?: number | null;
  /** live snapshots: why the image is crash-consistent (no agent, agent timeout or error) */
  quiesceError?: string;
  /** which data path ran (absent in results of runs from before the one-pass path) */
  dataPath?: SnapshotDataPath;
  /** one pass: the committed offset the upload resumed from instead of 0: of the staged guest data, or of a named upload's staged chunk names (32 bytes a slot) */
  resumedFrom?: number;
  /** one pass: SHA-256 over the guest-visible disk's 1 MiB blocks, also the image's snapshot_logical_digest */
  logicalDigest?: string;
  /** the image the run started with was deleted (a replayed run): the snapshot went into a new one */
  replacedImageId?: string;
  /** milliseconds spent in each step, by step name */
  steps: Partial<Record<SnapshotStep, number>>;
  /** one pass: full or incremental, the full one's reason, the incremental's parent image */
  kind?: SnapshotKind;
  fullReason?: string;
  parentImageId?: string;
  /** bytes of guest data sent: all data for a full snapshot, the changed extents for an incremental */
  changedBytes?: number;
  /** backups: what the rotation deleted (the new image too when rotation is 0, as in Nova) */
  rotation?: RotationOutcome;
  /** scheduled backups with a retention: what the prune after the rotation deleted */
  prune?: PruneOutcome;
}

export interface RotationOutcome {
  /** backups of this instance and type, newest first, that stay */
  kept: string[];
  deleted: string[];
  /** deletes the image service refused (protected, busy): the next backup's rotation tries again */
  failed: { imageId: string; error: string }[];
}

export interface SnapshotProgress {
  step: SnapshotStep;
  imageId?: string;
  host?: string;
  mode?: SnapshotMode;
  bytesDone: number;
  bytesTotal: number;
  steps: Partial<Record<SnapshotStep, number>>;
  error?: string;
}

export const progressQuery = defineQuery<SnapshotProgress>('progress');

/** Sent by the upload activity (throttled) so that the progress query can show bytes. */
export interface TransferProgress {
  bytesDone: number;
  bytesTotal: number;
}
export const transferProgressSignal = defineSignal<[TransferProgress]>('transferProgress');
