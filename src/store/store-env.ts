// The instance store's configuration from the environment, shared by every process that opens it
// (compute API, control workers): a SQLite file under the data dir by default, PostgreSQL when
// SNAP_STORE_POSTGRES_URL is set (several control nodes on one database).
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { StoreConfigInput } from './store-config';
import { DataDirSchema } from '../config/data-dir';
import { parseEnv } from '../config/env';

export const StoreEnvSchema = z.object({
  SNAP_DATA_DIR: DataDirSchema,
  SNAP_STORE_SQLITE: z.string().min(1).optional(),
  SNAP_STORE_POSTGRES_URL: z.string().min(1).optional(),
});

export function storeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): StoreConfigInput {
  const e = parseEnv(StoreEnvSchema, env, 'instance store');
  if (e.SNAP_STORE_POSTGRES_URL !== undefined) return { kind: 'postgres', connectionString: e.SNAP_STORE_POSTGRES_URL };
  return { kind: 'sqlite', path: resolve(e.SNAP_STORE_SQLITE ?? join(e.SNAP_DATA_DIR, 'instances.sqlite')) };
}
