// Who a token speaks for, and the hook a service is given to find out. Services never interpret
// tokens themselves: whoever embeds one passes an authenticate function (Keystone, the static
// token table of token-file.ts, ...).
//
// Three kinds that differ in type, so that no check can take one for another (Nova's bug 968696
// was an `admin` role in any project read as cloud-wide admin):
// - a project caller: a member, or an admin of that one project (oslo.policy's project admin);
// - a cloud admin: a system-scoped admin, or an admin of the configured admin project
//   (oslo.policy's secure defaults; Nova's old context_is_admin);
// - the snapshot service: the workers' identity, which the image service lets write any
//   project's snapshot images and the compute API refuses.

interface Caller {
  /** Keystone's user id; the static token table has none. */
  userId?: string;
}

export interface ProjectCaller extends Caller {
  kind: 'project';
  projectId: string;
  /** Admin of this project only: never of another project, never of what has no project. */
  projectAdmin: boolean;
}

export interface CloudAdmin extends Caller {
  kind: 'cloud-admin';
  /** The token's project; null for a system-scoped token. */
  projectId: string | null;
}

export interface SnapshotService extends Caller {
  kind: 'service';
  projectId: string;
}

export type Identity = ProjectCaller | CloudAdmin | SnapshotService;

/** The image service's name for the same thing. */
export type AuthIdentity = Identity;

export type Authenticator = (token: string) => Identity | null | Promise<Identity | null>;

export function isCloudAdmin(identity: Identity): identity is CloudAdmin {
  return identity.kind === 'cloud-admin';
}

/** The workers' identity: what the image service accepts for a snapshot's image writes on behalf of any project. */
export function isSnapshotService(identity: Identity): identity is SnapshotService {
  return identity.kind === 'service';
}

/**
 * May a user act on what project `owner` owns (its servers and their snapshots)? A cloud admin on
 * anything; a project caller, admin or not, on its own project's only; what belongs to no project
 * (owner null) is the cloud admin's alone. The snapshot service is no user: never.
 */
export function mayActForProject(identity: Identity, owner: string | null): boolean {
  if (identity.kind === 'cloud-admin') return true;
  return identity.kind === 'project' && owner !== null && owner === identity.projectId;
}
