// Environment of the standalone image service process, validated once at start-up.
import { z } from 'zod';
import { EnvBooleanSchema, parseEnv } from '../../config/env';
import type { VerifyJobSettings } from './verify-jobs';

export const DEFAULT_MAX_IMAGE_BYTES = 1024 ** 4; // Glance's default image_size_cap: 1 TiB

export const ImageServerEnvSchema = z.object({
  SNAP_IMAGE_HOST: z.string().min(1).default('127.0.0.1'),
  SNAP_IMAGE_PORT: z.coerce.number().int().min(0).max(65535).default(9292),
  SNAP_IMAGE_DIR: z.string().min(1).default('.data/images'),
  /**
   * Glance's image_size_cap, for every way data comes in; also what a logical upload's disk and
   * served image may be, how many extents its layout may hold, and what an index on disk may describe.
   */
  SNAP_IMAGE_MAX_BYTES: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).default(DEFAULT_MAX_IMAGE_BYTES),
  /** Verify-after-commit: re-read and re-hash every image's bytes once published, before it turns active. */
  SNAP_IMAGE_VERIFY: EnvBooleanSchema.default('true'),
  /** Hours between the store's verify jobs (each one interval after the last started; at most 24 days, a timer's reach); 0: on request only. */
  SNAP_IMAGE_VERIFY_JOB_INTERVAL_HOURS: z.coerce.number().nonnegative().max(24 * 24).default(24),
  /** A chunk a verify job found whole within this many days is not read again (PBS's re-verify age); 0: every job reads every chunk. */
  SNAP_IMAGE_VERIFY_JOB_REVERIFY_DAYS: z.coerce.number().nonnegative().max(3660).default(30),
});

export interface ImageServerConfig {
  host: string;
  port: number;
  dataDir: string;
  maxImageBytes: number;
  verifyAfterCommit: boolean;
  verifyJobs: VerifyJobSettings;
}

export function imageServerConfigFromEnv(env: NodeJS.ProcessEnv): ImageServerConfig {
  const e = parseEnv(ImageServerEnvSchema, env, 'image service');
  const verifyJobs: VerifyJobSettings = {
    intervalMs: e.SNAP_IMAGE_VERIFY_JOB_INTERVAL_HOURS > 0 ? e.SNAP_IMAGE_VERIFY_JOB_INTERVAL_HOURS * 3600_000 : undefined,
    reverifyAfterMs: e.SNAP_IMAGE_VERIFY_JOB_REVERIFY_DAYS * 24 * 3600_000,
  };
  return { host: e.SNAP_IMAGE_HOST, port: e.SNAP_IMAGE_PORT, dataDir: e.SNAP_IMAGE_DIR, maxImageBytes: e.SNAP_IMAGE_MAX_BYTES, verifyAfterCommit: e.SNAP_IMAGE_VERIFY, verifyJobs };
}
