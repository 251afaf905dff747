// How the workers reach Cinder: the volume v3 endpoint from SNAP_VOLUME_URL, and one client per
// project (Cinder's URLs carry the project). The token is the workers' service token, as for the
// image service: a fixed token, a Keystone service token, or, with neither (Cinder's noauth, the
// tests), noauth's `user:project` for the instance's project, so the snapshots land in that project.
// With Keystone the snapshots would be the service user's, not the tenant's (Nova makes them with
// the user's token): Keystone trusts are the planned fix, see docs/security.md.
import { z } from 'zod';
import { CinderClient } from './client';

/** The volume v3 root without the project, e.g. `http://127.0.0.1:8776/v3`; unset: no volume-backed snapshots. */
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
export const VolumeSnapshotTimeoutSchema = z.coerce.number().int().min(1).max(86_400).default(600);

/** A Cinder client acting in one project. */
export type CinderForProject = (projectId: string) => CinderClient;

const NOAUTH_USER = 'snapshot-service';

export function cinderForProject(baseUrl: string, serviceToken: string | (() => Promise<string>) | undefined): CinderForProject {
  return (projectId) =>
    new CinderClient({
      baseUrl,
      projectId,
      token: async () => {
        if (typeof serviceToken === 'function') return serviceToken();
        return serviceToken ?? `${NOAUTH_USER}:${projectId}`;
      },
    });
}
