// The image service's limits from its environment (zod-validated at start-up): deleted-record
// retention and the per-project quota defaults (Glance's names; -1 unlimited).
import { z } from 'zod';
import { parseEnv } from '../config/env';
import { QuotaLimitSchema, type ImageQuotaLimits } from './quotas';

const DAY_MS = 24 * 3600_000;

export const ImageLimitsEnvSchema = z.object({
  /** Days a deleted image's record is kept (GET 404, id taken) before it is purged; fractions allowed. */
  SNAP_IMAGE_DELETED_RETENTION_DAYS: z.coerce.number().nonnegative().max(3650).default(7),
  /** Per-project defaults: images not deleted. */
  SNAP_IMAGE_QUOTA_IMAGE_COUNT_TOTAL: QuotaLimitSchema.default(1000),
  /** MiB of active images' data. */
  SNAP_IMAGE_QUOTA_IMAGE_SIZE_TOTAL: QuotaLimitSchema.default(-1),
  /** MiB the open resumable sessions stage. */
  SNAP_IMAGE_QUOTA_IMAGE_STAGE_TOTAL: QuotaLimitSchema.default(-1),
  /** Images receiving data at once: plain uploads and open resumable sessions. */
  SNAP_IMAGE_QUOTA_IMAGE_COUNT_UPLOADING: QuotaLimitSchema.default(16),
});

export interface ImageLimitsConfig {
  deletedRetentionMs: number;
  quotas: ImageQuotaLimits;
}

export function imageLimitsFromEnv(env: NodeJS.ProcessEnv): ImageLimitsConfig {
  const e = parseEnv(ImageLimitsEnvSchema, env, 'image service');
  return {
    deletedRetentionMs: Math.round(e.SNAP_IMAGE_DELETED_RETENTION_DAYS * DAY_MS),
    quotas: {
      image_count_total: e.SNAP_IMAGE_QUOTA_IMAGE_COUNT_TOTAL,
      image_size_total: e.SNAP_IMAGE_QUOTA_IMAGE_SIZE_TOTAL,
      image_stage_total: e.SNAP_IMAGE_QUOTA_IMAGE_STAGE_TOTAL,
      image_count_uploading: e.SNAP_IMAGE_QUOTA_IMAGE_COUNT_UPLOADING,
    },
  };
}
