// Table shapes as Kysely sees them. Timestamps are ISO-8601 text and booleans are 0/1 integers so
// that SQLite and PostgreSQL return identical JavaScript values and one code path serves both.
import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

export interface InstancesTable {
  uuid: string;
  name: string;
  host: string;
  project_id: string;
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
  /** Nova-style soft delete: 0 live, 1 deleted. */
  deleted: Generated<number>;
}

export interface StoreDatabase {
  instances: InstancesTable;
}

export type InstanceRow = Selectable<InstancesTable>;
export type NewInstanceRow = Insertable<InstancesTable>;
export type InstanceRowUpdate = Updateable<InstancesTable>;
