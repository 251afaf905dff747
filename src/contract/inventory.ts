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
 * A disk the domain names as a Cinder volume: Nova writes the volume id as the disk's `<serial>`.
 * The host's word only: the control side confirms it against Cinder's attachments before acting on it.
 */
export const InventoryVolumeSchema = z.object({
  volumeId: z.string().uuid(),
  /** Guest device name (vda, …) */
  device: z.string().min(1).max(32),
  /** the disk Nova's find_disk would take as the root disk */
  root: z.boolean(),
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
  /** Disks whose `<serial>` is a volume id; absent from hosts that do not report them. */
  volumes: z.array(InventoryVolumeSchema).max(64).optional(),
});

export type InventoryFlavor = z.infer<typeof InventoryFlavorSchema>;
export type InventoryDisk = z.infer<typeof InventoryDiskSchema>;
export type InventoryVolume = z.infer<typeof InventoryVolumeSchema>;
export type InventoryDomain = z.infer<typeof InventoryDomainSchema>;
