// Keystone's identity v3 token calls, as keystonemiddleware's auth_token makes them: a service
// token from password or application-credential auth, and `GET /v3/auth/tokens` to validate a
// user's token with it. Bodies are capped before they are buffered and parsed with zod.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';

export class KeystoneUnavailable extends Error {
  override readonly name = 'KeystoneUnavailable';
}

/** Keystone answered, but not as the identity v3 API does. */
export class KeystoneProtocolError extends Error {
  override readonly name = 'KeystoneProtocolError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export type ServiceCredentials =
  | { kind: 'password'; username: string; password: string; userDomain: string; project: string; projectDomain: string }
  | { kind: 'application-credential'; id: string; secret: string };

export interface KeystoneEndpoint {
  /** e.g. http://127.0.0.1:5000/v3 */
  url: string;
  /** PEM CA bundle for an https Keystone. */
  ca?: string;
  timeoutMs: number;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

const RoleSchema = z.object({ id: z.string().optional(), name: z.string() });
export const TokenBodySchema = z.object({
  token: z.object({
    expires_at: z.string().datetime({ offset: true }),
    user: z.object({ id: z.string(), name: z.string().optional() }),
    project: z.object({ id: z.string().min(1), name: z.string().optional() }).optional(),
    /** A system-scoped token (oslo.policy's system scope): `{"all": true}`. */
    system: z.object({ all: z.boolean().optional() }).passthrough().optional(),
    roles: z.array(RoleSchema).default([]),
  }),
});
export type KeystoneToken = z.infer<typeof TokenBodySchema>['token'];

export interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export function exchange(endpoint: KeystoneEndpoint, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const url = new URL(path, endpoint.url.endsWith('/') ? endpoint.url : `${endpoint.url}/`);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}), ...headers },
        timeout: endpoint.timeoutMs,
        ...(endpoint.ca === undefined ? {} : { ca: endpoint.ca }),
      },
      (res) => {
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > MAX_BODY_BYTES) {
          res.destroy();
          reject(new KeystoneProtocolError(`Keystone answer of ${declared} bytes exceeds ${MAX_BODY_BYTES}`, res.statusCode ?? 0));
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > MAX_BODY_BYTES) res.destroy(new KeystoneProtocolError(`Keystone answer exceeds ${MAX_BODY_BYTES} bytes`, res.statusCode ?? 0));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text.length === 0 ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new KeystoneUnavailable(`Keystone at ${url.origin} did not answer within ${endpoint.timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof KeystoneUnavailable || err instanceof KeystoneProtocolError ? err : new KeystoneUnavailable(`Keystone at ${url.origin}: ${err.message}`)));
    req.end(payload);
  });
}

/** The service user's authentication; `trustId`: scoped by that trust (Keystone's OS-TRUST), which only a password user can redeem. */
function authBody(credentials: ServiceCredentials, trustId?: string): unknown {
  if (credentials.kind === 'application-credential') {
    // an application credential is already scoped: Keystone refuses it any other scope
    if (trustId !== undefined) throw new KeystoneProtocolError('a trust can be redeemed only by a password service user, not an application credential', 0);
    return { auth: { identity: { methods: ['application_credential'], application_credential: { id: credentials.id, secret: credentials.secret } } } };
  }
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { name: credentials.username, domain: { name: credentials.userDomain }, password: credentials.password } } },
      scope: trustId === undefined ? { project: { name: credentials.project, domain: { name: credentials.projectDomain } } } : { 'OS-TRUST:trust': { id: trustId } },
    },
  };
}

function parsedToken(answer: Answer): KeystoneToken {
  const parsed = TokenBodySchema.safeParse(answer.body);
  if (!parsed.success) throw new KeystoneProtocolError(`Keystone's token body is not identity v3's: ${parsed.error.issues[0]?.message ?? ''}`, answer.status);
  return parsed.data.token;
}

/** A new token for the service user (scoped by `trustId` when given): its id (X-Subject-Token) and body. */
export async function issueToken(endpoint: KeystoneEndpoint, credentials: ServiceCredentials, trustId?: string): Promise<{ id: string; token: KeystoneToken }> {
  const answer = await exchange(endpoint, 'POST', 'auth/tokens?nocatalog', {}, authBody(credentials, trustId));
  if (answer.status === 401) throw new KeystoneProtocolError(trustId === undefined ? 'Keystone refused the service credentials' : `Keystone refused to redeem trust ${trustId} (expired, deleted, or not the service user's)`, 401);
  if (answer.status === 404 && trustId !== undefined) throw new KeystoneProtocolError(`Keystone has no trust ${trustId}`, 404);
  if (answer.status !== 201) throw new KeystoneProtocolError(`Keystone answered ${answer.status} to the service's authentication`, answer.status);
  const id = answer.headers['x-subject-token'];
  if (typeof id !== 'string' || id.length === 0) throw new KeystoneProtocolError('Keystone issued a token without X-Subject-Token', answer.status);
  return { id, token: parsedToken(answer) };
}

/** The token's body when Keystone knows it as valid; null when it does not (404); 'service-token-refused' on 401. */
export async function validateToken(endpoint: KeystoneEndpoint, serviceToken: string, subject: string): Promise<KeystoneToken | null | 'service-token-refused'> {
  const answer = await exchange(endpoint, 'GET', 'auth/tokens?nocatalog', { 'X-Auth-Token': serviceToken, 'X-Subject-Token': subject });
  if (answer.status === 200) return parsedToken(answer);
  if (answer.status === 404) return null;
  if (answer.status === 401) return 'service-token-refused';
  if (answer.status === 403) throw new KeystoneProtocolError('the service user may not validate tokens (it needs the service or admin role)', 403);
  throw new KeystoneProtocolError(`Keystone answered ${answer.status} to a token validation`, answer.status);
}
