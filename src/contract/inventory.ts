// What a compute host reports about its libvirt domains, validated at the boundary because it
// arrives from another process (the host agent) and feeds straight into SQL.
import { z } from 'zod';
import { DiskFormatSchema, PowerStateSchema } from './instance-states';

export const InventoryDiskSchema = z.object({
  path: z.string().min(1),
  format: DiskFormatSchema,
  /** Guest device name (vda, sda, ...); used only to pick the root disk. */
  target: z.string().min(1).optional(),
});

export const InventoryDomainSchema = z.object({
  uuid: z.string().uuid(),
  name: z.string().min(1),
  host: z.string().min(1),
  projectId: z.string().min(1),
  powerState: PowerStateSchema,
  disks: z.array(InventoryDiskSchema),
  /** Only used when the instance is first seen; an existing image_ref is never rewritten. */
  imageRef: z.string().min(1).nullable().optional(),
});

export type InventoryDisk = z.infer<typeof InventoryDiskSchema>;
export type InventoryDomain = z.infer<typeof InventoryDomainSchema>;
