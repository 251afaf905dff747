// Keystone tokens → identities, the way keystonemiddleware's auth_token validates them: the service
// user's own token (renewed before it expires) validates each user token with GET /v3/auth/tokens.
// Concurrent requests with one token share one validation; answers are cached, never past the
// token's expiry, valid ones and refusals in separate bounded caches so that a flood of unknown
// tokens cannot push valid ones out. Scope and roles follow oslo.policy's secure defaults (see
// identityOf).
import { createHash } from 'node:crypto';
import type { Identity } from './identity';
import { ExpiringCache } from './expiring-cache';
import { issueToken, validateToken, type KeystoneEndpoint, type KeystoneToken, type ServiceCredentials } from './keystone-client';

export interface KeystoneAuthOptions {
  endpoint: KeystoneEndpoint;
  credentials: ServiceCredentials;
  /** The project whose admins are cloud admins (Keystone's admin_project, Nova's context_is_admin); unset: only system-scoped admins are. */
  adminProjectId?: string;
  /** How long a validation is reused (keystonemiddleware's token_cache_time). Default 300 s. */
  cacheSeconds?: number;
  /** How long a refused token stays refused without asking again. Default 10 s. */
  negativeCacheSeconds?: number;
  /** Bounds of the two caches. Defaults 10000 valid, 1000 refused tokens. */
  maxCachedTokens?: number;
  maxRefusedTokens?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** A service token is renewed this long before Keystone's expiry, so no call carries a dying one. */
const RENEW_MARGIN_MS = 60_000;

function hasRole(token: KeystoneToken, name: string): boolean {
  return token.roles.some((r) => r.name.toLowerCase() === name);
}

/**
 * oslo.policy's secure defaults: `admin` on a system-scoped token, or on a token scoped to the
 * admin project, is cloud admin; `admin` on any other project is that project's admin only (Nova's
 * bug 968696 was taking it for cloud admin). `service` (Nova's and Glance's service users) is the
 * snapshot service. Other roles are members. An unscoped token, or a system token without admin,
 * has no identity here.
 */
export function identityOf(token: KeystoneToken, adminProjectId?: string): Identity | null {
  const user = { userId: token.user.id };
  const admin = hasRole(token, 'admin');
  if (token.project === undefined) return token.system?.all === true && admin ? { kind: 'cloud-admin', projectId: null, ...user } : null;
  const projectId = token.project.id;
  if (hasRole(token, 'service')) return { kind: 'service', projectId, ...user };
  if (admin && adminProjectId !== undefined && projectId === adminProjectId) return { kind: 'cloud-admin', projectId, ...user };
  return { kind: 'project', projectId, projectAdmin: admin, ...user };
}

export class KeystoneAuthenticator {
  private readonly valid: ExpiringCache<Identity>;
  private readonly refused: ExpiringCache<true>;
  private readonly validating = new Map<string, Promise<Identity | null>>();
  private service: ServiceSession | undefined;
  private renewing: Promise<ServiceSession> | undefined;
  private readonly now: () => number;

  constructor(readonly options: KeystoneAuthOptions) {
    this.now = options.now ?? Date.now;
    this.valid = new ExpiringCache(options.maxCachedTokens ?? 10_000);
    this.refused = new ExpiringCache(options.maxRefusedTokens ?? 1_000);
  }

  /** The caller's identity, or null for a missing, unknown, expired or unscoped token. Throws when Keystone cannot be asked. */
  authenticate(token: string | undefined): Promise<Identity | null> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) return Promise.resolve(null);
    const key = createHash('sha256').update(token, 'utf8').digest('hex');
    const now = this.now();
    const known = this.valid.get(key, now);
    if (known !== undefined) return Promise.resolve(known);
    if (this.refused.get(key, now) !== undefined) return Promise.resolve(null);
    let pending = this.validating.get(key);
    if (pending === undefined) {
      pending = this.validate(key, token).finally(() => this.validating.delete(key));
      this.validating.set(key, pending);
    }
    return pending;
  }

  private async validate(key: string, token: string): Promise<Identity | null> {
    let answer = await validateToken(this.options.endpoint, await this.serviceToken(), token);
    if (answer === 'service-token-refused') {
      // Revoked or expired early: one fresh service token, then the answer stands.
      this.service = undefined;
      answer = await validateToken(this.options.endpoint, await this.serviceToken(), token);
      if (answer === 'service-token-refused') throw new Error('Keystone refuses the service user\'s own token');
    }
    const now = this.now();
    const expires = answer === null ? Infinity : Date.parse(answer.expires_at);
    const identity = answer === null || expires <= now ? null : identityOf(answer, this.options.adminProjectId);
    if (identity === null) {
      this.refused.set(key, true, Math.min(now + (this.options.negativeCacheSeconds ?? 10) * 1000, expires));
      return null;
    }
    this.valid.set(key, Object.freeze(identity), Math.min(now + (this.options.cacheSeconds ?? 300) * 1000, expires));
    return identity;
  }

  /** The service user's token, for calls the services make on their own behalf (uploads to the image backend). */
  async serviceToken(): Promise<string> {
    return (await this.serviceSession()).id;
  }

  /** The service user's token with who it is: the trustee of the API's trusts, and the project its catalog URLs carry. */
  serviceSession(): Promise<ServiceSession> {
    if (this.service !== undefined && this.service.until > this.now()) return Promise.resolve(this.service);
    this.renewing ??= issueToken(this.options.endpoint, this.options.credentials)
      .then(({ id, token }) => {
        this.service = { id, userId: token.user.id, projectId: token.project?.id ?? null, until: Date.parse(token.expires_at) - RENEW_MARGIN_MS };
        return this.service;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    return this.renewing;
  }
}

export interface ServiceSession {
  /** the token */
  id: string;
  userId: string;
  projectId: string | null;
  /** renewed after this (ms since the epoch) */
  until: number;
}
