// The image service's view of its caller: what a request may see, from the identity the embedder's
// authenticator (src/auth) returns. Without an authenticator everything is allowed, so tests and
// single-user setups need no credentials.
import { isCloudAdmin, isSnapshotService, type AuthIdentity } from '../../auth';
import { forbidden, type ImageRequestRejected } from '../client/image-errors';
import { SNAPSHOT_WRITE_LOCK, type ImageRecord } from '../client/image-record';

/** Who is calling. projectId is null for the unauthenticated (no authenticator) mode and a system-scoped admin. */
export interface RequestContext {
  projectId: string | null;
  /** A cloud admin (src/auth): every project's images, public ones too. A project's own admin is not. */
  isAdmin: boolean;
  /** The snapshot service (the workers): any project's images, to create, write and delete them for a snapshot run; never public ones. */
  isService?: boolean;
}

export const UNAUTHENTICATED_ADMIN: RequestContext = { projectId: null, isAdmin: true };

export function contextFor(identity: AuthIdentity): RequestContext {
  return { projectId: identity.projectId, isAdmin: isCloudAdmin(identity), isService: isSnapshotService(identity) };
}

/** A token only sees its own project's images; admins and the snapshot service see all (hidden ones answer 404, not 403, so ids do not leak). */
export function canSee(ctx: RequestContext, owner: string | null): boolean {
  return actsForSnapshotService(ctx) || (ctx.projectId !== null && owner === ctx.projectId);
}

/** Whether a new image may name its owner: a snapshot is created on behalf of its instance's project. */
export function mayChooseOwner(ctx: RequestContext): boolean {
  return actsForSnapshotService(ctx);
}

/** The snapshot service writes images and never reads their data: a stolen worker token downloads no tenant's disk. */
export function mayReadData(ctx: RequestContext): boolean {
  return ctx.isService !== true;
}

/**
 * Whether the caller speaks for the snapshot service, the only writer of a locked image: the
 * service identity, or a cloud admin (who may do anything here anyway).
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
