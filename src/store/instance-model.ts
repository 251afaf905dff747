// The instance as the rest of the system sees it (camelCase, typed states) and the mapping from
// database rows, validated so that a hand-edited or corrupt row fails loudly instead of leaking
// an impossible state into a workflow.
import { z } from 'zod';
import {
  DiskFormatSchema,
  InventoryFlavorSchema,
  InventoryVolumeSchema,
  PowerStateSchema,
  TaskStateSchema,
  VmStateSchema,
  type DiskFormat,
  type InventoryFlavor,
  type InventoryVolume,
  type PowerState,
  type TaskState,
  type VmState,
} from '../contract';
import type { InstanceRow } from './store-schema';

export interface InstanceDisk {
  path: string;
  format: DiskFormat;
}

export interface Instance {
  uuid: string;
  /** libvirt domain name */
  name: string;
  host: string;
  /** null for a domain that names no owner: it belongs to no project, only cloud admins see it */
  projectId: string | null;
  vmState: VmState;
  powerState: PowerState;
  taskState: TaskState;
  imageRef: string | null;
  rootDisk: InstanceDisk | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  deleted: boolean;
  userId: string | null;
  flavor: InventoryFlavor | null;
  /** the disks the host's domain names as Cinder volumes (by `<serial>`), unconfirmed */
  volumes: InventoryVolume[];
}

/** A host as the live instances show it (the ops hosts listing). */
export interface HostSummary {
  host: string;
  servers: number;
  /** instances with a task in progress */
  busy: number;
}

const RowSchema = z.object({
  uuid: z.string(),
  name: z.string(),
  host: z.string(),
  project_id: z.string().nullable(),
  vm_state: VmStateSchema,
  power_state: PowerStateSchema,
  task_state: TaskStateSchema,
  image_ref: z.string().nullable(),
  root_disk_path: z.string().nullable(),
  root_disk_format: DiskFormatSchema.nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  deleted_at: z.string().nullable(),
  user_id: z.string().nullable(),
  flavor: z
    .string()
    .nullable()
    .transform((text, ctx) => {
      if (text === null) return null;
      const parsed = InventoryFlavorSchema.safeParse(safeJson(text));
      if (parsed.success) return parsed.data;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'flavor is not a valid flavor record' });
      return z.NEVER;
    }),
  volumes: z
    .string()
    .nullable()
    .optional()
    .transform((text, ctx) => {
      if (text == null) return [];
      const parsed = z.array(InventoryVolumeSchema).safeParse(safeJson(text));
      if (parsed.success) return parsed.data;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'volumes is not a valid volume list' });
      return z.NEVER;
    }),
  // pg returns integer columns as numbers, SQLite too; coerce guards against bigint drivers.
  deleted: z.coerce.number(),
});

export function instanceFromRow(row: InstanceRow): Instance {
  const r = RowSchema.parse(row);
  return {
    uuid: r.uuid,
    name: r.name,
    host: r.host,
    projectId: r.project_id,
    vmState: r.vm_state,
    powerState: r.power_state,
    taskState: r.task_state,
    imageRef: r.image_ref,
    rootDisk:
      r.root_disk_path !== null && r.root_disk_format !== null
        ? { path: r.root_disk_path, format: r.root_disk_format }
        : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deletedAt: r.deleted_at,
    deleted: r.deleted !== 0,
    userId: r.user_id,
    flavor: r.flavor,
    volumes: r.volumes,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
