// Keystone trusts (OS-TRUST), as Heat and Nova's deferred operations use them: the caller (trustor)
// delegates its roles on one project to the workers' service user (trustee), impersonating, for a
// short while. The compute API creates the trust with the caller's own token and hands the workers
// only its id (a workflow's history is stored; a token in it would outlive its purpose); the workers
// redeem it with their own password for a token of that project, and delete it when the run ends.
import { z } from 'zod';
import { exchange, issueToken, KeystoneProtocolError, TokenBodySchema, type KeystoneEndpoint, type ServiceCredentials } from './keystone-client';

/** Keystone's trust ids are uuid hex; anything else is refused before it reaches a URL. */
export const TrustIdSchema = z.string().regex(/^[0-9A-Za-z_-]{1,64}$/, 'a Keystone trust id');

const RoleNameSchema = z.object({ name: z.string().min(1).max(255) });

/** The body of POST /v3/OS-TRUST/trusts, as we send it. */
export const TrustRequestSchema = z
  .object({
    trust: z
      .object({
        trustor_user_id: z.string().min(1).max(64),
        trustee_user_id: z.string().min(1).max(64),
        project_id: z.string().min(1).max(64),
        roles: z.array(RoleNameSchema).min(1),
        impersonation: z.literal(true),
        allow_redelegation: z.literal(false),
        expires_at: z.string().datetime(),
      })
      .strict(),
  })
  .strict();
export type TrustRequest = z.infer<typeof TrustRequestSchema>;

/** What we read of Keystone's answer: the trust as it made it, checked against what was asked. */
export const TrustResponseSchema = z.object({
  trust: z.object({
    id: TrustIdSchema,
    trustor_user_id: z.string(),
    trustee_user_id: z.string(),
    project_id: z.string().nullable(),
    impersonation: z.boolean(),
    expires_at: z.string().nullable(),
    roles: z.array(z.object({ name: z.string() }).passthrough()).default([]),
  }),
});

export interface Delegation {
  trustorUserId: string;
  trusteeUserId: string;
  projectId: string;
  roles: readonly string[];
  expiresAt: Date;
}

/** The request body for one delegation; an invalid one (no roles, an empty id) is refused here, before Keystone. */
export function trustRequest(d: Delegation): TrustRequest {
  return TrustRequestSchema.parse({
    trust: {
      trustor_user_id: d.trustorUserId,
      trustee_user_id: d.trusteeUserId,
      project_id: d.projectId,
      roles: [...new Set(d.roles)].map((name) => ({ name })),
      impersonation: true,
      allow_redelegation: false,
      expires_at: d.expiresAt.toISOString(),
    },
  });
}

/** The trust id, once Keystone's answer is the trust asked for (a trust for another user or project is never passed on). */
export function acceptedTrust(body: unknown, asked: TrustRequest): string {
  const parsed = TrustResponseSchema.safeParse(body);
  if (!parsed.success) throw new KeystoneProtocolError(`Keystone's trust body is not OS-TRUST's: ${parsed.error.issues[0]?.message ?? ''}`, 201);
  const t = parsed.data.trust;
  const a = asked.trust;
  if (t.trustor_user_id !== a.trustor_user_id || t.trustee_user_id !== a.trustee_user_id || t.project_id !== a.project_id || !t.impersonation) {
    throw new KeystoneProtocolError('Keystone made a trust other than the one asked for', 201);
  }
  return t.id;
}

/** The caller's own token read back (a user may validate its own token): who it is, its project, its roles there. */
export async function tokenSubject(endpoint: KeystoneEndpoint, token: string): Promise<{ userId: string; projectId: string | null; roles: string[] }> {
  const answer = await exchange(endpoint, 'GET', 'auth/tokens?nocatalog', { 'X-Auth-Token': token, 'X-Subject-Token': token });
  if (answer.status !== 200) throw new KeystoneProtocolError(`Keystone answered ${answer.status} when the caller's token was read back`, answer.status);
  const parsed = TokenBodySchema.safeParse(answer.body);
  if (!parsed.success) throw new KeystoneProtocolError("Keystone's token body is not identity v3's", answer.status);
  const t = parsed.data.token;
  return { userId: t.user.id, projectId: t.project?.id ?? null, roles: t.roles.map((r) => r.name) };
}

/** POST /v3/OS-TRUST/trusts with the trustor's own token; the new trust's id. */
export async function createTrust(endpoint: KeystoneEndpoint, trustorToken: string, delegation: Delegation): Promise<string> {
  const body = trustRequest(delegation);
  const answer = await exchange(endpoint, 'POST', 'OS-TRUST/trusts', { 'X-Auth-Token': trustorToken }, body);
  if (answer.status !== 201) throw new KeystoneProtocolError(`Keystone answered ${answer.status} to the trust for the snapshot service${faultText(answer.body)}`, answer.status);
  return acceptedTrust(answer.body, body);
}

/** DELETE /v3/OS-TRUST/trusts/{id}; a trust already gone counts as deleted. Keystone lets the trustor or an admin delete one. */
export async function deleteTrust(endpoint: KeystoneEndpoint, token: string, trustId: string): Promise<void> {
  const id = TrustIdSchema.parse(trustId);
  const answer = await exchange(endpoint, 'DELETE', `OS-TRUST/trusts/${id}`, { 'X-Auth-Token': token });
  if (answer.status === 204 || answer.status === 404) return;
  throw new KeystoneProtocolError(`Keystone answered ${answer.status} to the deletion of trust ${id}${faultText(answer.body)}`, answer.status);
}

function faultText(body: unknown): string {
  const message = z.object({ error: z.object({ message: z.string() }) }).safeParse(body);
  return message.success ? `: ${message.data.error.message.slice(0, 300)}` : '';
}

/** A token is renewed this long before its expiry. */
const RENEW_MARGIN_MS = 60_000;
const MAX_CACHED_TRUSTS = 1_000;

/**
 * The workers' side: a project-scoped token for a trust, redeemed with the service user's password
 * and reused until shortly before it expires (a trust token never outlives its trust).
 */
export class TrustTokens {
  private readonly cache = new Map<string, { id: string; until: number }>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly endpoint: KeystoneEndpoint,
    private readonly credentials: ServiceCredentials,
    private readonly now: () => number = Date.now,
  ) {}

  token(trustId: string): Promise<string> {
    const id = TrustIdSchema.parse(trustId);
    const cached = this.cache.get(id);
    if (cached !== undefined && cached.until > this.now()) return Promise.resolve(cached.id);
    let pending = this.pending.get(id);
    if (pending === undefined) {
      pending = issueToken(this.endpoint, this.credentials, id)
        .then(({ id: token, token: body }) => {
          if (this.cache.size >= MAX_CACHED_TRUSTS) this.cache.delete(this.cache.keys().next().value ?? '');
          this.cache.set(id, { id: token, until: Date.parse(body.expires_at) - RENEW_MARGIN_MS });
          return token;
        })
        .finally(() => this.pending.delete(id));
      this.pending.set(id, pending);
    }
    return pending;
  }

  /** Forgets a trust's token (its trust was deleted). */
  forget(trustId: string): void {
    this.cache.delete(trustId);
  }
}
