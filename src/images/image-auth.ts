// The image service's view of its caller: what a request may see, from the identity the embedder's
// authenticator (src/auth) returns. Without an authenticator everything is allowed, so tests and
// single-user setups need no credentials.
import type { AuthIdentity } from '../auth';
import { forbidden, type ImageRequestRejected } from './image-errors';
import { SNAPSHOT_WRITE_LOCK, type ImageRecord } from './image-record';

/** Who is calling. projectId is null only for the unauthenticated (no authenticator) mode. */
export interface RequestContext {
  projectId: string | null;
  isAdmin: boolean;
  /** The caller holds the snapshot service's role (SNAPSHOT_SERVICE_ROLE). */
  isService?: boolean;
}

/** The Keystone / token-file role of the identity the snapshot workers write images with. */
export const SNAPSHOT_SERVICE_ROLE = 'service';

export const UNAUTHENTICATED_ADMIN: RequestContext = { projectId: null, isAdmin: true };

export function contextFor(identity: AuthIdentity): RequestContext {
  return { projectId: identity.projectId, isAdmin: identity.roles.includes('admin'), isService: identity.roles.includes(SNAPSHOT_SERVICE_ROLE) };
}

/**
 * A token only sees its own project's images; admins see all, and so does the snapshot service,
 * which writes every project's snapshots (hidden ones answer 404, not 403, so ids do not leak).
 */
export function canSee(ctx: RequestContext, owner: string | null): boolean {
  return actsForSnapshotService(ctx) || (ctx.projectId !== null && owner === ctx.projectId);
}

/**
 * Whether the caller speaks for the snapshot service, the only writer of a locked image: the
 * service role, or an admin (the workers' token is an admin's until they have an identity of their own).
 */
export function actsForSnapshotService(ctx: RequestContext): boolean {
  return ctx.isService === true || ctx.isAdmin;
}

/**
 * Why the caller may not write the image's data or attributes (a 403 to throw), or undefined when
 * it may: while the snapshot service holds the image's write lock, only the service writes it.
 */
export function writeLockRefusal(ctx: RequestContext, record: ImageRecord): ImageRequestRejected | undefined {
  if (record.snapshot_write_lock !== SNAPSHOT_WRITE_LOCK || actsForSnapshotService(ctx)) return undefined;
  return forbidden(`Image ${record.id} is being written by the snapshot service: its data and attributes cannot be changed until the snapshot is done`);
}
