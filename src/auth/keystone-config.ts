// Keystone settings from the environment (zod-validated). Set SNAP_KEYSTONE_URL and the compute
// API and the image service validate Keystone tokens instead of the token file's.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseOrThrow } from '../config/validation';
import type { KeystoneAuthOptions } from './keystone-authenticator';
import { CATALOG_INTERFACES, type CatalogInterface } from './keystone-catalog';

const Name = z.string().min(1).max(255);

export const KeystoneEnvSchema = z
  .object({
    /** Identity v3 endpoint, e.g. https://keystone.example:5000/v3 */
    SNAP_KEYSTONE_URL: z.string().url().optional(),
    /** The service user (keystonemiddleware's [keystone_authtoken] username/password/project). */
    SNAP_KEYSTONE_USERNAME: Name.optional(),
    SNAP_KEYSTONE_PASSWORD: z.string().min(1).max(4096).optional(),
    SNAP_KEYSTONE_PROJECT: Name.default('service'),
    SNAP_KEYSTONE_USER_DOMAIN: Name.default('Default'),
    SNAP_KEYSTONE_PROJECT_DOMAIN: Name.default('Default'),
    /** An application credential instead of a password. */
    SNAP_KEYSTONE_APP_CREDENTIAL_ID: Name.optional(),
    SNAP_KEYSTONE_APP_CREDENTIAL_SECRET: z.string().min(1).max(4096).optional(),
    /** PEM CA bundle for an https Keystone. */
    SNAP_KEYSTONE_CA_FILE: z.string().min(1).optional(),
    /**
     * Id of the project whose `admin` tokens are cloud admins (Keystone's admin_project_name, Nova's
     * old context_is_admin). Unset: only system-scoped admin tokens are; an `admin` role anywhere
     * else is admin of its own project only.
     */
    SNAP_KEYSTONE_ADMIN_PROJECT: z.string().min(1).max(255).regex(/^[A-Za-z0-9_-]+$/, 'a Keystone project id').optional(),
    SNAP_KEYSTONE_CACHE_SECONDS: z.coerce.number().int().min(0).max(3600).default(300),
    SNAP_KEYSTONE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
    /** Which catalog endpoints the workers use for services they find there (Cinder's volumev3), as keystoneauth's interface. */
    SNAP_KEYSTONE_INTERFACE: z.enum(CATALOG_INTERFACES).default('public'),
    /** The catalog region; unset: the first endpoint of the interface. */
    SNAP_KEYSTONE_REGION: Name.optional(),
    /** Lifetime of the trust the compute API creates for a volume-backed snapshot (the workers' deadline to finish or clean up with it). */
    SNAP_KEYSTONE_TRUST_TTL_S: z.coerce.number().int().min(300).max(86_400).default(3600),
  })
  .superRefine((e, ctx) => {
    if (e.SNAP_KEYSTONE_URL === undefined) return;
    const appCred = e.SNAP_KEYSTONE_APP_CREDENTIAL_ID !== undefined || e.SNAP_KEYSTONE_APP_CREDENTIAL_SECRET !== undefined;
    if (appCred && (e.SNAP_KEYSTONE_APP_CREDENTIAL_ID === undefined || e.SNAP_KEYSTONE_APP_CREDENTIAL_SECRET === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['SNAP_KEYSTONE_APP_CREDENTIAL_SECRET'], message: 'an application credential needs both its id and its secret' });
    }
    if (!appCred && (e.SNAP_KEYSTONE_USERNAME === undefined || e.SNAP_KEYSTONE_PASSWORD === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['SNAP_KEYSTONE_USERNAME'], message: 'SNAP_KEYSTONE_URL needs a service user: SNAP_KEYSTONE_USERNAME and SNAP_KEYSTONE_PASSWORD, or an application credential' });
    }
  });

export interface KeystoneServiceOptions {
  /** where catalog services are looked up */
  catalog: { interface: CatalogInterface; region?: string };
  trustTtlSeconds: number;
}

/** The catalog and trust settings when SNAP_KEYSTONE_URL is set; undefined means the token file. */
export function keystoneServiceOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): KeystoneServiceOptions | undefined {
  const e = parseOrThrow(KeystoneEnvSchema, env, (issues) => new Error(`invalid Keystone settings: ${issues}`));
  if (e.SNAP_KEYSTONE_URL === undefined) return undefined;
  return { catalog: { interface: e.SNAP_KEYSTONE_INTERFACE, ...(e.SNAP_KEYSTONE_REGION === undefined ? {} : { region: e.SNAP_KEYSTONE_REGION }) }, trustTtlSeconds: e.SNAP_KEYSTONE_TRUST_TTL_S };
}

/** Keystone options when SNAP_KEYSTONE_URL is set; undefined means the token file. */
export function keystoneOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): KeystoneAuthOptions | undefined {
  const e = parseOrThrow(KeystoneEnvSchema, env, (issues) => new Error(`invalid Keystone settings: ${issues}`));
  if (e.SNAP_KEYSTONE_URL === undefined) return undefined;
  const credentials: KeystoneAuthOptions['credentials'] =
    e.SNAP_KEYSTONE_APP_CREDENTIAL_ID !== undefined && e.SNAP_KEYSTONE_APP_CREDENTIAL_SECRET !== undefined
      ? { kind: 'application-credential', id: e.SNAP_KEYSTONE_APP_CREDENTIAL_ID, secret: e.SNAP_KEYSTONE_APP_CREDENTIAL_SECRET }
      : {
          kind: 'password',
          username: e.SNAP_KEYSTONE_USERNAME ?? '',
          password: e.SNAP_KEYSTONE_PASSWORD ?? '',
          userDomain: e.SNAP_KEYSTONE_USER_DOMAIN,
          project: e.SNAP_KEYSTONE_PROJECT,
          projectDomain: e.SNAP_KEYSTONE_PROJECT_DOMAIN,
        };
  return {
    endpoint: {
      url: e.SNAP_KEYSTONE_URL,
      timeoutMs: e.SNAP_KEYSTONE_TIMEOUT_MS,
      ...(e.SNAP_KEYSTONE_CA_FILE === undefined ? {} : { ca: readFileSync(e.SNAP_KEYSTONE_CA_FILE, 'utf8') }),
    },
    credentials,
    ...(e.SNAP_KEYSTONE_ADMIN_PROJECT === undefined ? {} : { adminProjectId: e.SNAP_KEYSTONE_ADMIN_PROJECT }),
    cacheSeconds: e.SNAP_KEYSTONE_CACHE_SECONDS,
  };
}
