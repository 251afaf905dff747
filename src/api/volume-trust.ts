// The compute API's side of Keystone trusts for volume-backed snapshots. Nova makes a volume-backed
// instance's Cinder snapshots with the user's token, so they are the tenant's; a durable run outlives
// any token, so here the API, when it accepts createImage (a createBackup of such an instance is
// refused, as Nova refuses it), has the caller (trustor) delegate its roles on the instance's
// project to the workers' service user (trustee), impersonating, for a short while, and hands the
// workflow only the trust's id. The run deletes the trust when it ends. Without Keystone, or when
// the caller's token is not scoped to the instance's project (a cloud admin acting on another
// project's server), there is no trust: the workers act with their own token, as before.
import type { Logger } from 'pino';
import { createTrust, deleteTrust, KeystoneUnavailable, tokenSubject, type Identity, type KeystoneAuthenticator } from '../auth';
import { errorMessage, isVolumeBacked } from '../contract';
import type { Instance } from '../store';
import { forbidden, serviceUnavailable, type ApiError } from './api-errors';

export interface TrustDelegator {
  /** A trust from the caller to the workers' service user on `projectId`, with the caller's roles there; its id. */
  delegate(callerToken: string, projectId: string): Promise<string>;
  /** Deletes a trust the request made (the trustor may). */
  revoke(callerToken: string, trustId: string): Promise<void>;
}

/** A request's trust: made before anything else, revoked when the request is refused after it. */
export interface RequestTrust {
  create(): Promise<string>;
  revoke(trustId: string): Promise<void>;
}

/**
 * Whether a snapshot request delegates through a trust: under Keystone (a delegator), for an
 * instance whose root disk is a volume (Nova's is_volume_backed_instance: the branch that calls
 * Cinder), when the caller's token is scoped to the instance's project (Keystone lets a trustor
 * delegate only roles it holds there).
 */
export function delegates(identity: Identity, instance: Pick<Instance, 'projectId' | 'volumes'>, delegator: TrustDelegator | undefined): boolean {
  if (delegator === undefined || instance.projectId === null) return false;
  if (!isVolumeBacked(instance)) return false;
  return identity.kind !== 'service' && identity.projectId === instance.projectId;
}

/** The trust of one request, or undefined when it makes none. */
export function requestTrust(ctx: { identity: Identity; token: string; services: { trusts?: TrustDelegator } }, instance: Instance): RequestTrust | undefined {
  const { trusts } = ctx.services;
  const projectId = instance.projectId;
  if (trusts === undefined || projectId === null || !delegates(ctx.identity, instance, trusts)) return undefined;
  return { create: () => trusts.delegate(ctx.token, projectId), revoke: (trustId) => trusts.revoke(ctx.token, trustId) };
}

/** Keystone's refusal as the caller reads it: 503 when it cannot be asked, 403 when it says no; nothing was made. */
export function trustRefusal(err: unknown, log: Logger): ApiError {
  log.warn({ err }, 'Keystone did not create the trust for a volume-backed snapshot');
  if (err instanceof KeystoneUnavailable) return serviceUnavailable('The identity service could not be reached to delegate the snapshot. Nothing was changed; try again later.');
  return forbidden(`The snapshot service cannot act for you on the server's volumes: Keystone refused the trust (${errorMessage(err).slice(0, 200)})`);
}

/** Trusts through our Keystone service user: the trustee is that user, the trust lives `ttlSeconds`. */
export function keystoneTrustDelegator(keystone: KeystoneAuthenticator, ttlSeconds: number, now: () => number = Date.now): TrustDelegator {
  const endpoint = keystone.options.endpoint;
  return {
    async delegate(callerToken, projectId) {
      const [caller, service] = await Promise.all([tokenSubject(endpoint, callerToken), keystone.serviceSession()]);
      if (caller.projectId !== projectId) throw new Error(`the caller's token is scoped to another project than ${projectId}`);
      return createTrust(endpoint, callerToken, { trustorUserId: caller.userId, trusteeUserId: service.userId, projectId, roles: caller.roles, expiresAt: new Date(now() + ttlSeconds * 1000) });
    },
    revoke: (callerToken, trustId) => deleteTrust(endpoint, callerToken, trustId),
  };
}
