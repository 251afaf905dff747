// The image service's view of its caller: what a request may see, from the identity the embedder's
// authenticator (src/auth) returns. Without an authenticator everything is allowed, so tests and
// single-user setups need no credentials.
import type { AuthIdentity } from '../auth';

/** Who is calling. projectId is null only for the unauthenticated (no authenticator) mode. */
export interface RequestContext {
  projectId: string | null;
  isAdmin: boolean;
}

export const UNAUTHENTICATED_ADMIN: RequestContext = { projectId: null, isAdmin: true };

export function contextFor(identity: AuthIdentity): RequestContext {
  return { projectId: identity.projectId, isAdmin: identity.roles.includes('admin') };
}

/** A token only sees its own project's images; admins see all (hidden ones answer 404, not 403, so ids do not leak). */
export function canSee(ctx: RequestContext, owner: string | null): boolean {
  return ctx.isAdmin || (ctx.projectId !== null && owner === ctx.projectId);
}
