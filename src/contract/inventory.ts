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

/**
 * The guest's size as Nova's server view shows it: Nova's own flavor record from the domain's
 * metadata on a Nova host, else the domain's vCPUs and memory with no name and no disk sizes.
 */
export const InventoryFlavorSchema = z.object({
  name: z.string().max(255).nullable(),
  vcpus: z.number().int().nonnegative(),
  memoryMiB: z.number().int().nonnegative(),
  diskGiB: z.number().int().nonnegative(),
  swapMiB: z.number().int().nonnegative(),
  ephemeralGiB: z.number().int().nonnegative(),
});

export const InventoryDomainSchema = z.object({
  uuid: z.string().uuid(),
  name: z.string().min(1),
  host: z.string().min(1),
  /** The domain's `<nova:owner>` project, else the host's configured default; null: no project's, admin-only. */
  projectId: z.string().min(1).max(255).nullable(),
  powerState: PowerStateSchema,
  disks: z.array(InventoryDiskSchema),
  /** Only used when the instance is first seen; an existing image_ref is never rewritten. */
  imageRef: z.string().min(1).nullable().optional(),
  /** The owning user from Nova's domain metadata, when the host runs Nova. */
  userId: z.string().min(1).max(255).nullable().optional(),
  flavor: InventoryFlavorSchema.nullable().optional(),
});

export type InventoryFlavor = z.infer<typeof InventoryFlavorSchema>;
export type InventoryDisk = z.infer<typeof InventoryDiskSchema>;
export type InventoryDomain = z.infer<typeof InventoryDomainSchema>;
