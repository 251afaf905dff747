// Where the composing store keeps its chunks and indexes, from the environment: the data dir's
// files (default), or an S3 bucket several image services share (Ceph's RADOS Gateway, path-style).
// Credentials come from the environment or from a JSON file (`{"accessKeyId", "secretAccessKey"}`,
// as an operator's secret mount holds them); never both, never neither.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { EnvBooleanSchema, InvalidEnvironment, parseEnv } from '../../config/env';
import { parseOrThrow } from '../../config/validation';
import { errorMessage } from '../../contract';
import type { S3Location } from '../store/s3-objects';
import { DEFAULT_CHUNK_PUTS_IN_FLIGHT, MAX_CHUNK_PUTS_IN_FLIGHT } from '../store/store-backend';

/** PBS's default: a chunk newer than a day (and five minutes) is never swept. */
export const DEFAULT_GC_GRACE_HOURS = 24;

export const StoreBackendEnvSchema = z.object({
  SNAP_IMAGE_STORE_BACKEND: z.enum(['local', 's3']).default('local'),
  SNAP_IMAGE_S3_ENDPOINT: z.string().url().optional(),
  SNAP_IMAGE_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens')
    .optional(),
  /** RGW's zonegroup ("default" on a fresh cluster); any string AWS's signer accepts */
  SNAP_IMAGE_S3_REGION: z.string().min(1).default('default'),
  /** keys start with it: several stores in one bucket */
  SNAP_IMAGE_S3_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9._-]+\/)*$/, "'' or path segments each ending in '/'")
    .default(''),
  SNAP_IMAGE_S3_PATH_STYLE: EnvBooleanSchema.default('true'),
  SNAP_IMAGE_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  SNAP_IMAGE_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  SNAP_IMAGE_S3_CREDENTIALS_FILE: z.string().min(1).optional(),
  /** chunk PUTs a commit keeps in flight; 1: one after another */
  SNAP_IMAGE_S3_CHUNK_PUTS_IN_FLIGHT: z.coerce.number().int().min(1).max(MAX_CHUNK_PUTS_IN_FLIGHT).default(DEFAULT_CHUNK_PUTS_IN_FLIGHT),
  /** a shared store's chunk younger than this is never swept */
  SNAP_IMAGE_STORE_GC_GRACE_HOURS: z.coerce.number().nonnegative().max(24 * 365).default(DEFAULT_GC_GRACE_HOURS),
  /** minutes between a shared store's background sweeps */
  SNAP_IMAGE_STORE_SWEEP_MINUTES: z.coerce.number().positive().max(24 * 24 * 60).default(60),
  /** how stale another service's image record may be when served (0: read the bucket every time) */
  SNAP_IMAGE_STORE_RECORDS_TTL_SECONDS: z.coerce.number().nonnegative().max(3600).default(5),
});

const CredentialsFileSchema = z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }).strict();

export interface SharedStoreSettings {
  location: S3Location;
  graceMs: number;
  putsInFlight: number;
  sweepMs: number;
  recordsTtlMs: number;
}

/** The S3 store's settings, or undefined for the local one; InvalidEnvironment naming what is wrong. */
export async function storeBackendFromEnv(env: NodeJS.ProcessEnv): Promise<SharedStoreSettings | undefined> {
  const e = parseEnv(StoreBackendEnvSchema, env, 'image store backend');
  if (e.SNAP_IMAGE_STORE_BACKEND === 'local') return undefined;
  if (e.SNAP_IMAGE_S3_ENDPOINT === undefined || e.SNAP_IMAGE_S3_BUCKET === undefined) {
    throw new InvalidEnvironment('invalid image store backend environment: SNAP_IMAGE_STORE_BACKEND=s3 needs SNAP_IMAGE_S3_ENDPOINT and SNAP_IMAGE_S3_BUCKET');
  }
  const inline = e.SNAP_IMAGE_S3_ACCESS_KEY_ID !== undefined || e.SNAP_IMAGE_S3_SECRET_ACCESS_KEY !== undefined;
  if (inline === (e.SNAP_IMAGE_S3_CREDENTIALS_FILE !== undefined)) {
    throw new InvalidEnvironment('invalid image store backend environment: give the S3 credentials either as SNAP_IMAGE_S3_ACCESS_KEY_ID and SNAP_IMAGE_S3_SECRET_ACCESS_KEY or as SNAP_IMAGE_S3_CREDENTIALS_FILE');
  }
  const credentials = inline ? parseOrThrow(CredentialsFileSchema, { accessKeyId: e.SNAP_IMAGE_S3_ACCESS_KEY_ID, secretAccessKey: e.SNAP_IMAGE_S3_SECRET_ACCESS_KEY }, credentialsError('the environment')) : await credentialsFile(e.SNAP_IMAGE_S3_CREDENTIALS_FILE as string);
  return {
    location: { endpoint: e.SNAP_IMAGE_S3_ENDPOINT, region: e.SNAP_IMAGE_S3_REGION, bucket: e.SNAP_IMAGE_S3_BUCKET, prefix: e.SNAP_IMAGE_S3_PREFIX, pathStyle: e.SNAP_IMAGE_S3_PATH_STYLE, credentials },
    graceMs: e.SNAP_IMAGE_STORE_GC_GRACE_HOURS * 3600_000,
    putsInFlight: e.SNAP_IMAGE_S3_CHUNK_PUTS_IN_FLIGHT,
    sweepMs: e.SNAP_IMAGE_STORE_SWEEP_MINUTES * 60_000,
    recordsTtlMs: e.SNAP_IMAGE_STORE_RECORDS_TTL_SECONDS * 1000,
  };
}

const credentialsError = (where: string) => (issues: string) => new InvalidEnvironment(`invalid image store backend environment: S3 credentials from ${where}: ${issues}`);

async function credentialsFile(path: string): Promise<z.infer<typeof CredentialsFileSchema>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new InvalidEnvironment(`invalid image store backend environment: SNAP_IMAGE_S3_CREDENTIALS_FILE cannot be read as JSON: ${errorMessage(err)}`);
  }
  return parseOrThrow(CredentialsFileSchema, json, credentialsError('SNAP_IMAGE_S3_CREDENTIALS_FILE'));
}
