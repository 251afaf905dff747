// What we read of Cinder's v3 answers (zod): only the fields the snapshot path uses, the rest passed
// through unread. Statuses stay strings: a release may add one, and the callers decide what an
// unknown one means.
import { z } from 'zod';

const Id = z.string().uuid();
const Size = z.number().int().nonnegative();

export const VolumeAttachmentSchema = z
  .object({
    server_id: z.string().nullish(),
    attachment_id: z.string().nullish(),
    volume_id: z.string(),
    device: z.string().nullish(),
  })
  .passthrough();

export const VolumeSchema = z
  .object({
    id: Id,
    name: z.string().nullish(),
    status: z.string(),
    size: Size,
    bootable: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
    attachments: z.array(VolumeAttachmentSchema).default([]),
    volume_image_metadata: z.record(z.string()).optional(),
  })
  .passthrough();

export const AttachmentSchema = z
  .object({
    id: Id,
    volume_id: Id,
    instance: z.string().nullish(),
    status: z.string(),
  })
  .passthrough();

export const SnapshotSchema = z
  .object({
    id: Id,
    name: z.string().nullish(),
    status: z.string(),
    size: Size,
    volume_id: Id,
    created_at: z.string().nullish(),
    metadata: z.record(z.string()).default({}),
  })
  .passthrough();

export const AbsoluteLimitsSchema = z
  .object({
    maxTotalSnapshots: z.number().int(),
    totalSnapshotsUsed: z.number().int().nonnegative(),
    maxTotalVolumeGigabytes: z.number().int(),
    totalGigabytesUsed: z.number().int().nonnegative(),
  })
  .passthrough();

export const Answers = {
  volume: z.object({ volume: VolumeSchema }),
  attachments: z.object({ attachments: z.array(AttachmentSchema).max(10_000) }),
  snapshot: z.object({ snapshot: SnapshotSchema }),
  snapshots: z.object({ snapshots: z.array(SnapshotSchema).max(10_000) }),
  limits: z.object({ limits: z.object({ absolute: AbsoluteLimitsSchema }).passthrough() }),
};

export type CinderVolume = z.output<typeof VolumeSchema>;
export type CinderAttachment = z.output<typeof AttachmentSchema>;
export type CinderSnapshot = z.output<typeof SnapshotSchema>;
export type CinderAbsoluteLimits = z.output<typeof AbsoluteLimitsSchema>;
