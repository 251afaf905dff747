// Table shapes as Kysely sees them. Timestamps are ISO-8601 text and booleans are 0/1 integers so
// that SQLite and PostgreSQL return identical JavaScript values and one code path serves both.
import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

export interface InstancesTable {
  uuid: string;
  name: string;
  host: string;
  /** null: the domain names no owner and the host sets no default project (admin-only) */
  project_id: string | null;
  vm_state: string;
  power_state: number;
  task_state: string | null;
  image_ref: string | null;
  root_disk_path: string | null;
  root_disk_format: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  /** the owning user, when the host's Nova metadata names one */
  user_id: string | null;
  /** the InventoryFlavor as JSON text */
  flavor: string | null;
  /** the InventoryVolume[] the host reported, as JSON text; null before any report named them */
  volumes: string | null;
  /** Nova-style soft delete: 0 live, 1 deleted. */
  deleted: Generated<number>;
}

export interface InstanceActionsTable {
  request_id: string;
  instance_uuid: string;
  action: string;
  /** the snapshot image the action made, by which the workflow's events find it */
  image_id: string | null;
  user_id: string | null;
  project_id: string;
  start_time: string;
  finish_time: string | null;
  /** Nova's: null, or 'Error' once an event failed */
  message: string | null;
  updated_at: string;
}

export interface InstanceActionEventsTable {
  request_id: string;
  event: string;
  host: string | null;
  start_time: string;
  finish_time: string | null;
  result: string | null;
  traceback: string | null;
}

/** One row per one-pass snapshot that took a checkpoint, or that was full for a stated reason. */
export interface SnapshotChainTable {
  image_id: string;
  instance_uuid: string;
  host: string;
  /** 'full' | 'incremental' */
  kind: string;
  full_reason: string | null;
  parent_image_id: string | null;
  /** the libvirt checkpoint taken with it, and libvirt's description of it (for redefine) */
  checkpoint: string | null;
  checkpoint_xml: string | null;
  disk_identity: string | null;
  virtual_size: number;
  changed_bytes: number | null;
  created_at: string;
  /** 0 while the checkpoint is the one the next snapshot may build on; 1 once retention deleted it */
  retired: Generated<number>;
}

export interface StoreDatabase {
  instances: InstancesTable;
  instance_actions: InstanceActionsTable;
  instance_action_events: InstanceActionEventsTable;
  snapshot_chain: SnapshotChainTable;
}

export type InstanceRow = Selectable<InstancesTable>;
export type NewInstanceRow = Insertable<InstancesTable>;
export type InstanceRowUpdate = Updateable<InstancesTable>;
