// The trust the compute API asks Keystone for (OS-TRUST's request body, zod) and what it accepts
// back: only the trust it asked for (trustor, trustee, project, impersonation), its id checked.
import { acceptedTrust, KeystoneProtocolError, TrustIdSchema, trustRequest, type Delegation } from '../../../src/auth';

const delegation: Delegation = {
  trustorUserId: 'u-demo',
  trusteeUserId: 'u-snapshots',
  projectId: 'p-demo',
  roles: ['member', 'reader', 'member'],
  expiresAt: new Date('2030-01-01T00:15:00Z'),
};

function answer(overrides: Record<string, unknown> = {}): unknown {
  return {
    trust: {
      id: '0123456789abcdef0123456789abcdef',
      trustor_user_id: 'u-demo',
      trustee_user_id: 'u-snapshots',
      project_id: 'p-demo',
      impersonation: true,
      expires_at: '2030-01-01T00:15:00.000000Z',
      roles: [{ id: 'r1', name: 'member' }, { id: 'r2', name: 'reader' }],
      remaining_uses: null,
      links: { self: 'http://keystone/v3/OS-TRUST/trusts/0123456789abcdef0123456789abcdef' },
      ...overrides,
    },
  };
}

describe('the trust request', () => {
  it('delegates the caller\'s roles (each once) to the trustee on the project, impersonating, not redelegable, until expires_at', () => {
    expect(trustRequest(delegation)).toEqual({
      trust: {
        trustor_user_id: 'u-demo',
        trustee_user_id: 'u-snapshots',
        project_id: 'p-demo',
        roles: [{ name: 'member' }, { name: 'reader' }],
        impersonation: true,
        allow_redelegation: false,
        expires_at: '2030-01-01T00:15:00.000Z',
      },
    });
  });

  it('refuses a delegation with no roles or no trustee before Keystone is asked', () => {
    expect(() => trustRequest({ ...delegation, roles: [] })).toThrow();
    expect(() => trustRequest({ ...delegation, trusteeUserId: '' })).toThrow();
  });
});

describe("Keystone's answer", () => {
  const asked = trustRequest(delegation);

  it('gives the trust id of the trust asked for', () => {
    expect(acceptedTrust(answer(), asked)).toBe('0123456789abcdef0123456789abcdef');
  });

  it('refuses a trust for another trustee, trustor or project, or one that does not impersonate', () => {
    for (const wrong of [{ trustee_user_id: 'u-other' }, { trustor_user_id: 'u-other' }, { project_id: 'p-other' }, { impersonation: false }]) {
      expect(() => acceptedTrust(answer(wrong), asked)).toThrow(KeystoneProtocolError);
    }
  });

  it('refuses a body that is not a trust, or an id that could retarget a URL', () => {
    expect(() => acceptedTrust({ error: { message: 'no' } }, asked)).toThrow(/not OS-TRUST/);
    expect(() => acceptedTrust(answer({ id: '../users/x' }), asked)).toThrow(KeystoneProtocolError);
    expect(TrustIdSchema.safeParse('0123456789abcdef0123456789abcdef').success).toBe(true);
    expect(TrustIdSchema.safeParse('a/b').success).toBe(false);
  });
});
