// How the workers reach Cinder: the volume v3 root (SNAP_VOLUME_URL, or Keystone's catalog: see
// keystone-volume-access.ts), and one client per project (Cinder's URLs carry the project). The token
// is the workers': under Keystone a trust's token when the compute API delegated the caller's roles
// (the snapshots are then the tenant's, as Nova's are), else the service token; a fixed token; or,
// with neither (Cinder's noauth, the tests), noauth's `user:project` for the instance's project.
import { z } from 'zod';
import { DEFAULT_VOLUME_SNAPSHOT_TIMEOUT_MS } from '../contract';
import { CinderClient } from './client';

/** The volume v3 root without the project, e.g. `http://127.0.0.1:8776/v3`; unset: Keystone's catalog, or no volume-backed snapshots. */
export const VolumeUrlSchema = z
  .string()
  .url()
  .refine((url) => /^https?:\/\//.test(url), 'must be an http(s) URL')
  .transform((url) => url.replace(/\/+$/, ''))
  .optional();

/**
 * SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS: how long a run waits for its Cinder snapshots to become
 * `available` (Nova waits with no deadline, the guest frozen meanwhile); past it the run fails and
 * deletes them. 10 minutes by default; a day at most.
 */
export const VolumeSnapshotTimeoutSchema = z.coerce.number().int().min(1).max(86_400).default(DEFAULT_VOLUME_SNAPSHOT_TIMEOUT_MS / 1000);

/** Where Cinder is and which token acts in a project (with the run's trust, when it has one). */
export interface VolumeAccess {
  baseUrl: string | (() => Promise<string>);
  token(projectId: string, trustId: string | undefined): Promise<string>;
}

/** A Cinder client acting in one project, through the run's trust when it has one. */
export type CinderForProject = (projectId: string, trustId?: string) => CinderClient;

export function cinderFor(access: VolumeAccess): CinderForProject {
  return (projectId, trustId) => new CinderClient({ baseUrl: access.baseUrl, projectId, token: () => access.token(projectId, trustId) });
}

const NOAUTH_USER = 'snapshot-service';

/** A fixed root and the service token (a function: renewed by its source), or noauth's user:project without one; trusts play no part. */
export function cinderForProject(baseUrl: VolumeAccess['baseUrl'], serviceToken: string | (() => Promise<string>) | undefined): CinderForProject {
  return cinderFor({
    baseUrl,
    token: async (projectId) => {
      if (typeof serviceToken === 'function') return serviceToken();
      return serviceToken ?? `${NOAUTH_USER}:${projectId}`;
    },
  });
}
