// Cinder under Keystone, for the workers and the compute API: the volume v3 root from
// SNAP_VOLUME_URL, or else Keystone's catalog (service type volumev3, the configured interface and
// region) as the service user sees it, its URL's project (Keystone substitutes the token's into
// `…/v3/%(project_id)s`) taken off, since each client appends its own. A run's calls carry its
// trust's token (the compute API's delegation of the caller's roles on the instance's project), so
// the snapshots are the tenant's; without a trust, the service token, which Cinder refuses in another
// project's URL (400 "Malformed request url"): such a run fails before it makes anything.
import { catalogEndpoint, deleteTrust, fetchCatalog, keystoneOptionsFromEnv, keystoneServiceOptionsFromEnv, KeystoneAuthenticator, TrustTokens, type EndpointFilter } from '../auth';
import { cinderFor, cinderForProject, type CinderForProject } from './cinder-endpoint';

export const VOLUME_SERVICE_TYPE = 'volumev3';

/** The catalog URL's root: its project segment (or an unsubstituted `%(project_id)s`) taken off. */
export function volumeRootOf(url: string, projectId: string | null): string {
  const trimmed = url.replace(/\/+$/, '');
  const last = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  if ((projectId !== null && last === projectId) || /^[%$]\(project_id\)s$/.test(last) || /^[%$]\(tenant_id\)s$/.test(last)) return trimmed.slice(0, trimmed.lastIndexOf('/'));
  return trimmed;
}

/** The volume root from the catalog, looked up once (again after a failure). */
export function catalogVolumeRoot(keystone: KeystoneAuthenticator, filter: Omit<EndpointFilter, 'type'>): () => Promise<string> {
  let root: Promise<string> | undefined;
  return () => {
    root ??= (async () => {
      const session = await keystone.serviceSession();
      const catalog = await fetchCatalog(keystone.options.endpoint, session.id);
      return volumeRootOf(catalogEndpoint(catalog, { type: VOLUME_SERVICE_TYPE, ...filter }), session.projectId);
    })().catch((err: unknown) => {
      root = undefined;
      throw err;
    });
    return root;
  };
}

export interface WorkerVolumeAccess {
  cinder: CinderForProject;
  /** Deletes a run's trust with the service user's token (Keystone lets an admin or the trustor); undefined without Keystone. */
  releaseTrust?(trustId: string): Promise<void>;
}

/**
 * The workers' Cinder from their environment: Keystone (SNAP_KEYSTONE_*) with SNAP_VOLUME_URL or the
 * catalog; else SNAP_VOLUME_URL with the fixed token (noauth's user:project without one); else none.
 */
export function workerVolumeAccess(volumeUrl: string | undefined, fixedToken: string | undefined, env: NodeJS.ProcessEnv = process.env): WorkerVolumeAccess | undefined {
  const options = keystoneOptionsFromEnv(env);
  const service = keystoneServiceOptionsFromEnv(env);
  if (options === undefined || service === undefined) return volumeUrl === undefined ? undefined : { cinder: cinderForProject(volumeUrl, fixedToken) };
  const keystone = new KeystoneAuthenticator(options);
  const trusts = new TrustTokens(options.endpoint, options.credentials);
  return {
    cinder: cinderFor({
      baseUrl: volumeUrl ?? catalogVolumeRoot(keystone, service.catalog),
      token: (_projectId, trustId) => (trustId === undefined ? keystone.serviceToken() : trusts.token(trustId)),
    }),
    async releaseTrust(trustId) {
      await deleteTrust(options.endpoint, await keystone.serviceToken(), trustId);
      trusts.forget(trustId);
    },
  };
}
