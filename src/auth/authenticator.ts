// Token → identity. Tokens are compared through their SHA-256 digests so that the lookup time does
// not depend on how many leading characters of a guess match a real token.
import { createHash } from 'node:crypto';
import type { Authenticator, Identity } from './identity';
import { DEFAULT_ADMIN_PROJECT, TokenConfigSchema, type TokenConfig, type TokenEntry } from './auth-config';

export type { Identity } from './identity';

/** What the compute API asks: the static token table answers at once, Keystone after a round trip. */
export interface IdentitySource {
  /** The identity for a token, or null for a missing/unknown one (→ 401). Throws when it cannot be decided (→ 503). */
  authenticate(token: string | undefined): Identity | null | Promise<Identity | null>;
}

export interface TokenAuthenticator extends IdentitySource {
  authenticate: (token: string | undefined) => Identity | null;
  /** A cloud admin's token (ops retries, tests). */
  adminToken(): string;
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The same rules as Keystone's (keystone-authenticator.ts): admin of the admin project is cloud admin, admin elsewhere its own project's. */
export function tokenEntryIdentity(entry: Pick<TokenEntry, 'projectId' | 'roles'>): Identity {
  if (entry.roles.includes('service')) return { kind: 'service', projectId: entry.projectId };
  const admin = entry.roles.includes('admin');
  if (admin && entry.projectId === DEFAULT_ADMIN_PROJECT) return { kind: 'cloud-admin', projectId: entry.projectId };
  return { kind: 'project', projectId: entry.projectId, projectAdmin: admin };
}

export function createAuthenticator(input: TokenConfig): TokenAuthenticator {
  const config = TokenConfigSchema.parse(input);
  const byDigest = new Map<string, Identity>();
  for (const entry of config.tokens) byDigest.set(digest(entry.token), Object.freeze(tokenEntryIdentity(entry)));
  const admin = config.tokens.find((t) => tokenEntryIdentity(t).kind === 'cloud-admin');
  return {
    authenticate(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 256) return null;
      return byDigest.get(digest(token)) ?? null;
    },
    adminToken() {
      if (admin === undefined) throw new Error(`the token configuration has no admin token (an 'admin' role in project '${DEFAULT_ADMIN_PROJECT}')`);
      return admin.token;
    },
  };
}

/** Adapter for the image service's `authenticate` option: same tokens for compute and image APIs. */
export function imageServiceAuthenticator(auth: IdentitySource): Authenticator {
  return (token) => auth.authenticate(token);
}
