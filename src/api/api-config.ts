// Environment of the compute API process, validated once at start-up.
import { VolumeUrlSchema } from '../cinder/cinder-endpoint';
import { resolve } from 'node:path';
import { z } from 'zod';
import { storeConfigFromEnv, type StoreConfigInput } from '../store';
import { DataDirSchema } from '../config/data-dir';
import { ImageUrlSchema, parseEnv } from '../config/env';
import { DEFAULT_CATCHUP_WINDOW_SECONDS } from '../temporal/backup-schedules';
import { CreateBackupPolicySchema, type CreateBackupPolicy } from './backup-policy';

export const ApiEnvSchema = z.object({
  SNAP_API_HOST: z.string().min(1).default('127.0.0.1'),
  SNAP_API_PORT: z.coerce.number().int().min(0).max(65535).default(8774),
  SNAP_IMAGE_URL: ImageUrlSchema,
  SNAP_VOLUME_URL: VolumeUrlSchema,
  /** Temporal Web UI base used in the links of ops answers. */
  SNAP_TEMPORAL_UI_URL: z.string().url().default('http://127.0.0.1:8233'),
  SNAP_DATA_DIR: DataDirSchema,
  /** Nova's metadata_items quota for createImage metadata. */
  SNAP_IMAGE_METADATA_QUOTA: z.coerce.number().int().min(0).max(10_000).default(128),
  /** os_compute_api:os-create-backup: Nova's default (a member or admin of the server's project), or cloud admins only. */
  SNAP_POLICY_CREATE_BACKUP: CreateBackupPolicySchema.default('project_member_or_admin'),
  /** os_compute_api:os-backup-schedule: who may read and manage a server's backup schedule (same values). */
  SNAP_POLICY_BACKUP_SCHEDULE: CreateBackupPolicySchema.default('project_member_or_admin'),
  /** A scheduled backup missed by more than this (control plane down) is skipped, not made up. */
  SNAP_BACKUP_CATCHUP_WINDOW_S: z.coerce.number().int().min(10).max(366 * 86_400).default(DEFAULT_CATCHUP_WINDOW_SECONDS),
});

export interface ApiConfig {
  host: string;
  port: number;
  imageUrl: string;
  /** Cinder's v3 root: the snapshot quota of volume-backed instances is read before a run starts */
  volumeUrl?: string;
  temporalUiUrl: string;
  dataDir: string;
  store: StoreConfigInput;
  metadataQuota: number;
  createBackupPolicy: CreateBackupPolicy;
  backupSchedulePolicy: CreateBackupPolicy;
  backupCatchupWindowSeconds: number;
}

export function apiConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const e = parseEnv(ApiEnvSchema, env, 'compute API');
  const dataDir = resolve(e.SNAP_DATA_DIR);
  // SNAP_STORE_SQLITE / SNAP_STORE_POSTGRES_URL, read the same way by every process that opens the store
  const store = storeConfigFromEnv(env);
  return {
    host: e.SNAP_API_HOST,
    port: e.SNAP_API_PORT,
    imageUrl: e.SNAP_IMAGE_URL,
    volumeUrl: e.SNAP_VOLUME_URL,
    temporalUiUrl: e.SNAP_TEMPORAL_UI_URL.replace(/\/$/, ''),
    dataDir,
    store,
    metadataQuota: e.SNAP_IMAGE_METADATA_QUOTA,
    createBackupPolicy: e.SNAP_POLICY_CREATE_BACKUP,
    backupSchedulePolicy: e.SNAP_POLICY_BACKUP_SCHEDULE,
    backupCatchupWindowSeconds: e.SNAP_BACKUP_CATCHUP_WINDOW_S,
  };
}
