// Environment of the standalone image service process, validated once at start-up.
import { z } from 'zod';
import { EnvBooleanSchema, parseEnv } from '../../config/env';

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
});

export interface ImageServerConfig {
  host: string;
  port: number;
  dataDir: string;
  maxImageBytes: number;
  verifyAfterCommit: boolean;
}

export function imageServerConfigFromEnv(env: NodeJS.ProcessEnv): ImageServerConfig {
  const e = parseEnv(ImageServerEnvSchema, env, 'image service');
  return { host: e.SNAP_IMAGE_HOST, port: e.SNAP_IMAGE_PORT, dataDir: e.SNAP_IMAGE_DIR, maxImageBytes: e.SNAP_IMAGE_MAX_BYTES, verifyAfterCommit: e.SNAP_IMAGE_VERIFY };
}
