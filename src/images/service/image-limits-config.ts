// The image service's limits from its environment (zod-validated at start-up): deleted-record
// retention, the per-project quota defaults (Glance's names; -1 unlimited), connection timeouts
// and the bounds on data uploads.
import { z } from 'zod';
import { parseEnv } from '../../config/env';
import { ProjectQuotaOverridesSchema, QuotaLimitSchema, type ImageQuotaLimits, type ProjectQuotaOverrides } from './quotas';
import type { UploadLimits } from './upload-limits';

const Millis = z.coerce.number().int().min(1).max(24 * 3600_000);

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
  /** JSON: {"<project id>": {"image_count_total": 50, ...}}, limits that differ for those projects. */
  SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES: z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
        return z.NEVER;
      }
    })
    .pipe(ProjectQuotaOverridesSchema),
  /** A connection with no traffic at all for this long is closed. */
  SNAP_IMAGE_CONNECTION_TIMEOUT_MS: Millis.default(300_000),
  /** Longest a client may take to send one whole request, body included (a plain PUT of a whole image too). */
  SNAP_IMAGE_REQUEST_TIMEOUT_MS: Millis.default(3_600_000),
  /** An idle keep-alive connection is closed after this long between requests. */
  SNAP_IMAGE_KEEP_ALIVE_TIMEOUT_MS: Millis.default(72_000),
  /** A client that sends no image data for this long while the service waits for it is cut. */
  SNAP_IMAGE_BODY_IDLE_TIMEOUT_MS: Millis.default(120_000),
  /** Data requests (plain PUT, resumable PATCH) served at once; past it 503 with Retry-After. */
  SNAP_IMAGE_MAX_CONCURRENT_UPLOADS: z.coerce.number().int().min(1).max(100_000).default(64),
});

export interface ImageLimitsConfig {
  deletedRetentionMs: number;
  quotas: ImageQuotaLimits;
  quotaOverrides: ProjectQuotaOverrides;
  idleTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  uploadLimits: UploadLimits;
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
    quotaOverrides: e.SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES,
    idleTimeoutMs: e.SNAP_IMAGE_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: e.SNAP_IMAGE_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: e.SNAP_IMAGE_KEEP_ALIVE_TIMEOUT_MS,
    uploadLimits: { maxConcurrentUploads: e.SNAP_IMAGE_MAX_CONCURRENT_UPLOADS, bodyIdleTimeoutMs: e.SNAP_IMAGE_BODY_IDLE_TIMEOUT_MS },
  };
}
