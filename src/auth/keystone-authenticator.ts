// Keystone tokens → identities, the way keystonemiddleware's auth_token validates them: the service
// user's own token (renewed before it expires) validates each user token with GET /v3/auth/tokens;
// answers are cached briefly, never past the token's expiry; only project-scoped tokens are
// accepted; Keystone's `admin` role maps to admin, any other role to member (policy as for tokens).
import { createHash } from 'node:crypto';
import type { Role } from './auth-config';
import type { Identity } from './authenticator';
import { issueToken, validateToken, type KeystoneEndpoint, type KeystoneToken, type ServiceCredentials } from './keystone-client';

export interface KeystoneAuthOptions {
  endpoint: KeystoneEndpoint;
  credentials: ServiceCredentials;
  /** How long a validation is reused (keystonemiddleware's token_cache_time). Default 300 s. */
  cacheSeconds?: number;
  /** How long a refused token stays refused without asking again. Default 10 s. */
  negativeCacheSeconds?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Cached {
  identity: Identity | null;
  until: number;
}

const MAX_CACHED = 10_000;
/** A service token is renewed this long before Keystone's expiry, so no call carries a dying one. */
const RENEW_MARGIN_MS = 60_000;

export function identityOf(token: KeystoneToken): Identity | null {
  if (token.project === undefined) return null;
  const admin = token.roles.some((r) => r.name.toLowerCase() === 'admin');
  const roles: Role[] = admin ? ['admin', 'member'] : ['member'];
  return Object.freeze({ projectId: token.project.id, userId: token.user.id, roles: Object.freeze(roles), isAdmin: admin });
}

export class KeystoneAuthenticator {
  private readonly cache = new Map<string, Cached>();
  private service: { id: string; until: number } | undefined;
  private renewing: Promise<string> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: KeystoneAuthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The caller's identity, or null for a missing, unknown, expired or unscoped token. Throws when Keystone cannot be asked. */
  async authenticate(token: string | undefined): Promise<Identity | null> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) return null;
    const key = createHash('sha256').update(token, 'utf8').digest('hex');
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.until > this.now()) return hit.identity;
    this.cache.delete(key);

    let answer = await validateToken(this.options.endpoint, await this.serviceToken(), token);
    if (answer === 'service-token-refused') {
      // Revoked or expired early: one fresh service token, then the answer stands.
      this.service = undefined;
      answer = await validateToken(this.options.endpoint, await this.serviceToken(), token);
      if (answer === 'service-token-refused') throw new Error('Keystone refuses the service user\'s own token');
    }
    const now = this.now();
    const identity = answer === null ? null : identityOf(answer);
    const expires = answer === null ? Infinity : Date.parse(answer.expires_at);
    if (answer !== null && expires <= now) return null;
    const ttl = (identity === null ? this.options.negativeCacheSeconds ?? 10 : this.options.cacheSeconds ?? 300) * 1000;
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { identity, until: Math.min(now + ttl, expires) });
    return identity;
  }

  /** The service user's token, for calls the services make on their own behalf (uploads to the image backend). */
  serviceToken(): Promise<string> {
    if (this.service !== undefined && this.service.until > this.now()) return Promise.resolve(this.service.id);
    this.renewing ??= issueToken(this.options.endpoint, this.options.credentials)
      .then(({ id, token }) => {
        this.service = { id, until: Date.parse(token.expires_at) - RENEW_MARGIN_MS };
        return id;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    return this.renewing;
  }
}
