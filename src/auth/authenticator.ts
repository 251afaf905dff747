// Token → identity. Tokens are compared through their SHA-256 digests so that the lookup time does
// not depend on how many leading characters of a guess match a real token.
import { createHash } from 'node:crypto';
import type { Authenticator, AuthIdentity } from './identity';
import { TokenConfigSchema, type Role, type TokenConfig } from './auth-config';

export interface Identity extends AuthIdentity {
  projectId: string;
  roles: readonly Role[];
  isAdmin: boolean;
  /** Keystone's user id; the static token table has none. */
  userId?: string;
}

/** What the compute API asks: the static token table answers at once, Keystone after a round trip. */
export interface IdentitySource {
  /** The identity for a token, or null for a missing/unknown one (→ 401). Throws when it cannot be decided (→ 503). */
  authenticate(token: string | undefined): Identity | null | Promise<Identity | null>;
}

export interface TokenAuthenticator extends IdentitySource {
  authenticate: (token: string | undefined) => Identity | null;
  /** A token carrying the admin role, for service-to-service calls (workers, ops retries). */
  adminToken(): string;
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function createAuthenticator(input: TokenConfig): TokenAuthenticator {
  const config = TokenConfigSchema.parse(input);
  const byDigest = new Map<string, Identity>();
  for (const entry of config.tokens) {
    byDigest.set(digest(entry.token), Object.freeze({ projectId: entry.projectId, roles: Object.freeze([...entry.roles]), isAdmin: entry.roles.includes('admin') }));
  }
  const admin = config.tokens.find((t) => t.roles.includes('admin'));
  return {
    authenticate(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 256) return null;
      return byDigest.get(digest(token)) ?? null;
    },
    adminToken() {
      if (admin === undefined) throw new Error('the token configuration has no admin token');
      return admin.token;
    },
  };
}

/** Adapter for the image service's `authenticate` option: same tokens for compute and image APIs. */
export function imageServiceAuthenticator(auth: IdentitySource): Authenticator {
  return (token) => auth.authenticate(token);
}
