// Nova's instance state vocabulary (nova/compute/{vm_states,task_states,power_state}.py), limited to
// what the snapshot path needs. Kept as literal unions so a typo is a compile error, not a stuck row.
import { z } from 'zod';

/** Nova power_state numbers, exactly as Nova stores them (the gaps are Nova's, not ours). */
export const POWER_STATE_NOSTATE = 0;
export const POWER_STATE_RUNNING = 1;
export const POWER_STATE_PAUSED = 3;
export const POWER_STATE_SHUTDOWN = 4;
export const POWER_STATE_CRASHED = 6;
export const POWER_STATE_SUSPENDED = 7;

export const POWER_STATES = [
  POWER_STATE_NOSTATE,
  POWER_STATE_RUNNING,
  POWER_STATE_PAUSED,
  POWER_STATE_SHUTDOWN,
  POWER_STATE_CRASHED,
  POWER_STATE_SUSPENDED,
] as const;
export type PowerState = (typeof POWER_STATES)[number];
export const PowerStateSchema = z.union([
  z.literal(POWER_STATE_NOSTATE),
  z.literal(POWER_STATE_RUNNING),
  z.literal(POWER_STATE_PAUSED),
  z.literal(POWER_STATE_SHUTDOWN),
  z.literal(POWER_STATE_CRASHED),
  z.literal(POWER_STATE_SUSPENDED),
]);

export const VM_STATES = ['active', 'stopped', 'paused', 'suspended', 'error', 'deleted'] as const;
export type VmState = (typeof VM_STATES)[number];
export const VmStateSchema = z.enum(VM_STATES);

export const TASK_STATES = [
  'image_snapshot_pending',
  'image_snapshot',
  /** Nova's IMAGE_BACKUP: createBackup sets it and the snapshot path expects it instead of image_snapshot. */
  'image_backup',
  'image_pending_upload',
  'image_uploading',
  'deleting',
] as const;
/** null means "no task in progress", as in Nova. */
export type TaskState = (typeof TASK_STATES)[number] | null;
export const TaskStateSchema = z.enum(TASK_STATES).nullable();

/** The task states a snapshot sets: its compensation and the reconciler reset only these (Nova's reverts_task_state). */
export const SNAPSHOT_TASK_STATES: readonly NonNullable<TaskState>[] = ['image_snapshot_pending', 'image_snapshot', 'image_backup', 'image_pending_upload', 'image_uploading'];

export const DISK_FORMATS = ['qcow2', 'raw'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];
export const DiskFormatSchema = z.enum(DISK_FORMATS);
