// The compute API's decision to delegate through a Keystone trust, and what a request does with its
// trust: a refusal by Keystone changes nothing (403, or 503 when Keystone cannot be asked); a
// request refused after its trust was made deletes it again.
import { KeystoneProtocolError, KeystoneUnavailable, type Identity } from '../../../src/auth';
import { delegates, requestTrust, type TrustDelegator } from '../../../src/api/volume-trust';
import type { ImageClient } from '../../../src/images/client';
import { instanceWith, refusingStarter } from '../../support/refusing-starter';

const ROOT = { volumeId: '33333333-3333-4333-8333-333333333333', device: 'vda', root: true };
const DATA = { volumeId: '44444444-4444-4444-8444-444444444444', device: 'vdb', root: false };
const member: Identity = { kind: 'project', projectId: 'p1', projectAdmin: false, userId: 'u1' };

function recordingDelegator(fail?: Error): TrustDelegator & { made: string[]; revoked: string[] } {
  const made: string[] = [];
  const revoked: string[] = [];
  return {
    made,
    revoked,
    async delegate(token, projectId) {
      if (fail !== undefined) throw fail;
      made.push(`${token}@${projectId}`);
      return 'trust-1';
    },
    async revoke(_token, trustId) {
      revoked.push(trustId);
    },
  };
}

describe('when the API delegates', () => {
  const delegator = recordingDelegator();

  it('under Keystone, for a volume-backed instance, to a caller scoped to its project (member or project admin)', () => {
    expect(delegates(member, instanceWith([ROOT, DATA]), delegator)).toBe(true);
    expect(delegates({ ...member, projectAdmin: true }, instanceWith([ROOT]), delegator)).toBe(true);
    expect(delegates({ kind: 'cloud-admin', projectId: 'p1', userId: 'u0' }, instanceWith([ROOT]), delegator)).toBe(true);
  });

  it('never without Keystone, for an image-backed instance (a data volume is not the root), or across projects', () => {
    expect(delegates(member, instanceWith([ROOT]), undefined)).toBe(false);
    expect(delegates(member, instanceWith([DATA]), delegator)).toBe(false);
    expect(delegates(member, instanceWith([]), delegator)).toBe(false);
    // a cloud admin of another project, or system-scoped, holds no roles on the instance's project to delegate
    expect(delegates({ kind: 'cloud-admin', projectId: 'admin', userId: 'u0' }, instanceWith([ROOT]), delegator)).toBe(false);
    expect(delegates({ kind: 'cloud-admin', projectId: null, userId: 'u0' }, instanceWith([ROOT]), delegator)).toBe(false);
    expect(delegates(member, { ...instanceWith([ROOT]), projectId: null }, delegator)).toBe(false);
  });

  it("a request's trust is made with the caller's token for the instance's project", async () => {
    const d = recordingDelegator();
    const trust = requestTrust({ identity: member, token: 'tok', services: { trusts: d } }, instanceWith([ROOT]));
    expect(await trust?.create()).toBe('trust-1');
    expect(d.made).toEqual(['tok@p1']);
    expect(requestTrust({ identity: member, token: 'tok', services: {} }, instanceWith([ROOT]))).toBeUndefined();
  });
});

describe('a snapshot request with a trust', () => {
  const images = { create: () => Promise.reject(new Error('the image service is down')) } as unknown as ImageClient;
  const request = { instance: instanceWith([ROOT]), name: 's1', metadata: {}, images, requestId: 'req-1', projectId: 'p1' };

  it("Keystone's refusal: 403 naming it, and nothing made", async () => {
    const { starter, touched } = refusingStarter();
    const d = recordingDelegator(new KeystoneProtocolError('Keystone answered 403 to the trust for the snapshot service', 403));
    const trust = requestTrust({ identity: member, token: 'tok', services: { trusts: d } }, request.instance);
    const refusal = await starter.start({ ...request, ...(trust === undefined ? {} : { trust }) }).catch((e: unknown) => e);
    expect(refusal).toMatchObject({ status: 403, message: expect.stringContaining('Keystone refused the trust') });
    expect(touched).toEqual([]);
  });

  it('Keystone unreachable: 503, and nothing made', async () => {
    const { starter, touched } = refusingStarter();
    const d = recordingDelegator(new KeystoneUnavailable('Keystone at http://127.0.0.1:1: connect ECONNREFUSED'));
    const trust = requestTrust({ identity: member, token: 'tok', services: { trusts: d } }, request.instance);
    const refusal = await starter.start({ ...request, ...(trust === undefined ? {} : { trust }) }).catch((e: unknown) => e);
    expect(refusal).toMatchObject({ status: 503 });
    expect(touched).toEqual([]);
  });

  it('refused after the trust was made (the image service is down): the trust is deleted again', async () => {
    const { starter, touched } = refusingStarter();
    const d = recordingDelegator();
    const trust = requestTrust({ identity: member, token: 'tok', services: { trusts: d } }, request.instance);
    const refusal = await starter.start({ ...request, ...(trust === undefined ? {} : { trust }) }).catch((e: unknown) => e);
    expect(refusal).toMatchObject({ status: 503 });
    expect(d.made).toEqual(['tok@p1']);
    expect(d.revoked).toEqual(['trust-1']);
    expect(touched).toEqual([]);
  });
});
