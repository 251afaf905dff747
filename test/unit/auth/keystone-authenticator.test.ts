// KeystoneAuthenticator against a small stand-in for Keystone's two token calls: what it caches and
// for how long, that a token's expiry wins over the cache, scope and role mapping (oslo.policy's
// secure defaults), one validation per token in flight, bounded caches, and the renewal of a
// refused service token. (The real Keystone runs in test/integration/openstack.)
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeystoneAuthenticator, KeystoneUnavailable, keystoneOptionsFromEnv, type KeystoneAuthOptions } from '../../../src/auth';

interface Known {
  project?: string;
  /** a system-scoped token */
  system?: boolean;
  roles: string[];
  expiresAt: string;
}

let server: Server;
let url: string;
const tokens = new Map<string, Known>();
let validations = 0;
let issued = 0;
let serviceTokens = new Set<string>();
/** While set, validations wait for it: the requests are in flight together. */
let gate: Promise<void> | undefined;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const path = req.url?.split('?')[0];
    if (req.method === 'POST' && path === '/v3/auth/tokens') {
      const auth = JSON.parse(await body(req)) as { auth: { identity: { password: { user: { password: string } } } } };
      if (auth.auth.identity.password.user.password !== 'service-secret') return res.writeHead(401).end('{}');
      issued += 1;
      const id = `service-${issued}`;
      serviceTokens.add(id);
      res.writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': id });
      return res.end(JSON.stringify({ token: { expires_at: new Date(Date.now() + 3600_000).toISOString(), user: { id: 'svc' }, project: { id: 'service' }, roles: [{ name: 'service' }] } }));
    }
    if (req.method === 'GET' && path === '/v3/auth/tokens') {
      if (!serviceTokens.has(String(req.headers['x-auth-token']))) return res.writeHead(401).end('{}');
      validations += 1;
      await gate;
      const known = tokens.get(String(req.headers['x-subject-token']));
      if (known === undefined) return res.writeHead(404).end('{"error":{"code":404}}');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ token: { expires_at: known.expiresAt, user: { id: 'u-1' }, ...(known.project ? { project: { id: known.project } } : {}), ...(known.system ? { system: { all: true } } : {}), roles: known.roles.map((name) => ({ name })) } }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  tokens.clear();
  validations = 0;
  gate = undefined;
});

function authenticator(now: () => number = Date.now, password = 'service-secret', more: Partial<KeystoneAuthOptions> = {}): KeystoneAuthenticator {
  return new KeystoneAuthenticator({
    endpoint: { url, timeoutMs: 2000 },
    credentials: { kind: 'password', username: 'snapshots', password, userDomain: 'Default', project: 'service', projectDomain: 'Default' },
    cacheSeconds: 300,
    negativeCacheSeconds: 10,
    now,
    ...more,
  });
}

const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

it("maps scope and roles as oslo.policy's secure defaults: admin is cloud-wide only system-scoped or in the admin project", async () => {
  tokens.set('t-member', { project: 'p-1', roles: ['reader', 'member'], expiresAt: inAnHour() });
  tokens.set('t-admin', { project: 'p-ops', roles: ['admin'], expiresAt: inAnHour() });
  tokens.set('t-admin-project', { project: 'p-cloud', roles: ['admin', 'member'], expiresAt: inAnHour() });
  tokens.set('t-system-admin', { system: true, roles: ['admin'], expiresAt: inAnHour() });
  tokens.set('t-system-reader', { system: true, roles: ['reader'], expiresAt: inAnHour() });
  tokens.set('t-service', { project: 'service', roles: ['admin', 'service'], expiresAt: inAnHour() });
  tokens.set('t-unscoped', { roles: [], expiresAt: inAnHour() });
  const auth = authenticator(Date.now, 'service-secret', { adminProjectId: 'p-cloud' });
  expect(await auth.authenticate('t-member')).toEqual({ kind: 'project', projectId: 'p-1', userId: 'u-1', projectAdmin: false });
  // Nova's bug 968696: an admin role in any project is not cloud admin, only its own project's
  expect(await auth.authenticate('t-admin')).toEqual({ kind: 'project', projectId: 'p-ops', userId: 'u-1', projectAdmin: true });
  expect(await auth.authenticate('t-admin-project')).toEqual({ kind: 'cloud-admin', projectId: 'p-cloud', userId: 'u-1' });
  expect(await auth.authenticate('t-system-admin')).toEqual({ kind: 'cloud-admin', projectId: null, userId: 'u-1' });
  expect(await auth.authenticate('t-system-reader')).toBeNull();
  expect(await auth.authenticate('t-service')).toEqual({ kind: 'service', projectId: 'service', userId: 'u-1' });
  // without an admin project configured, only system-scoped admins are cloud admins
  expect((await authenticator().authenticate('t-admin-project'))?.kind).toBe('project');
  expect(await auth.authenticate('t-unscoped')).toBeNull();
  expect(await auth.authenticate('t-unknown')).toBeNull();
  expect(await auth.authenticate(undefined)).toBeNull();
});

it('reuses a validation for the cache time but never past the token expiry, and re-asks after it', async () => {
  let clock = Date.now();
  const auth = authenticator(() => clock);
  tokens.set('t-short', { project: 'p-1', roles: ['member'], expiresAt: new Date(clock + 30_000).toISOString() });
  tokens.set('t-long', { project: 'p-1', roles: ['member'], expiresAt: new Date(clock + 3600_000).toISOString() });
  await auth.authenticate('t-short');
  await auth.authenticate('t-long');
  await auth.authenticate('t-short');
  await auth.authenticate('t-long');
  expect(validations).toBe(2);
  clock += 31_000; // t-short has expired; t-long is still cached
  tokens.delete('t-short');
  expect(await auth.authenticate('t-short')).toBeNull();
  expect(await auth.authenticate('t-long')).not.toBeNull();
  expect(validations).toBe(3);
  clock += 300_000; // past the cache time: asked again, and a revoked token is now refused
  tokens.delete('t-long');
  expect(await auth.authenticate('t-long')).toBeNull();
  expect(validations).toBe(4);
});

it('keeps a refusal for the negative cache time only', async () => {
  let clock = Date.now();
  const auth = authenticator(() => clock);
  expect(await auth.authenticate('t-later')).toBeNull();
  tokens.set('t-later', { project: 'p-1', roles: ['member'], expiresAt: inAnHour() });
  expect(await auth.authenticate('t-later')).toBeNull();
  clock += 11_000;
  expect(await auth.authenticate('t-later')).not.toBeNull();
  expect(validations).toBe(2);
});

it('validates a token once however many requests carry it at the same time', async () => {
  tokens.set('t-busy', { project: 'p-1', roles: ['member'], expiresAt: inAnHour() });
  const auth = authenticator();
  await auth.serviceToken();
  let open = (): void => undefined;
  gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const answers = Array.from({ length: 20 }, () => auth.authenticate('t-busy'));
  const unknown = Array.from({ length: 5 }, () => auth.authenticate('t-nobody'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  open();
  const identities = await Promise.all(answers);
  expect(identities.every((i) => i?.projectId === 'p-1')).toBe(true);
  expect(await Promise.all(unknown)).toEqual([null, null, null, null, null]);
  expect(validations).toBe(2);
  // answered from the cache afterwards
  expect(await auth.authenticate('t-busy')).not.toBeNull();
  expect(validations).toBe(2);
});

it('keeps refusals apart from valid tokens: a flood of unknown tokens evicts no valid one, and both caches are bounded', async () => {
  const auth = authenticator(Date.now, 'service-secret', { maxCachedTokens: 3, maxRefusedTokens: 4 });
  for (const t of ['t-a', 't-b', 't-c', 't-d']) tokens.set(t, { project: 'p-1', roles: ['member'], expiresAt: inAnHour() });
  for (const t of ['t-a', 't-b', 't-c']) await auth.authenticate(t);
  expect(validations).toBe(3);
  for (let i = 0; i < 50; i++) expect(await auth.authenticate(`t-forged-${i}`)).toBeNull();
  expect(validations).toBe(53);
  for (const t of ['t-a', 't-b', 't-c']) expect(await auth.authenticate(t)).not.toBeNull();
  expect(validations).toBe(53);
  // the refusal cache holds only the last four unknown tokens
  expect(await auth.authenticate('t-forged-49')).toBeNull();
  expect(validations).toBe(53);
  expect(await auth.authenticate('t-forged-0')).toBeNull();
  expect(validations).toBe(54);
  // a fourth valid token pushes out the least recently used valid one
  await auth.authenticate('t-d');
  expect(validations).toBe(55);
  await auth.authenticate('t-a');
  expect(validations).toBe(56);
});

it('renews its own token once when Keystone stops accepting it', async () => {
  tokens.set('t-1', { project: 'p-1', roles: ['member'], expiresAt: inAnHour() });
  const auth = authenticator();
  const first = await auth.serviceToken();
  serviceTokens = new Set(); // revoked on Keystone's side
  expect(await auth.authenticate('t-1')).not.toBeNull();
  expect(await auth.serviceToken()).not.toBe(first);
});

it('throws rather than answers when Keystone cannot be asked or refuses the service user', async () => {
  const nowhere = new KeystoneAuthenticator({
    endpoint: { url: 'http://127.0.0.1:9/v3', timeoutMs: 500 },
    credentials: { kind: 'application-credential', id: 'x', secret: 'y' },
  });
  await expect(nowhere.authenticate('t-1')).rejects.toBeInstanceOf(KeystoneUnavailable);
  await expect(authenticator(Date.now, 'wrong').authenticate('t-1')).rejects.toThrow(/refused the service credentials/);
});

describe('Keystone settings from the environment', () => {
  it('is off without SNAP_KEYSTONE_URL, needs a service user with it, and takes an application credential', () => {
    expect(keystoneOptionsFromEnv({})).toBeUndefined();
    expect(() => keystoneOptionsFromEnv({ SNAP_KEYSTONE_URL: 'http://k:5000/v3' })).toThrow(/SNAP_KEYSTONE_USERNAME/);
    expect(() => keystoneOptionsFromEnv({ SNAP_KEYSTONE_URL: 'http://k:5000/v3', SNAP_KEYSTONE_APP_CREDENTIAL_ID: 'id' })).toThrow(/both its id and its secret/);
    expect(() => keystoneOptionsFromEnv({ SNAP_KEYSTONE_URL: 'not a url', SNAP_KEYSTONE_USERNAME: 'u', SNAP_KEYSTONE_PASSWORD: 'p' })).toThrow(/SNAP_KEYSTONE_URL/);
    expect(keystoneOptionsFromEnv({ SNAP_KEYSTONE_URL: 'http://k:5000/v3', SNAP_KEYSTONE_APP_CREDENTIAL_ID: 'id', SNAP_KEYSTONE_APP_CREDENTIAL_SECRET: 's' })).toMatchObject({
      endpoint: { url: 'http://k:5000/v3', timeoutMs: 10_000 },
      credentials: { kind: 'application-credential', id: 'id', secret: 's' },
      cacheSeconds: 300,
    });
    expect(keystoneOptionsFromEnv({ SNAP_KEYSTONE_URL: 'http://k:5000/v3', SNAP_KEYSTONE_USERNAME: 'nova', SNAP_KEYSTONE_PASSWORD: 'p' })?.credentials).toEqual({
      kind: 'password', username: 'nova', password: 'p', userDomain: 'Default', project: 'service', projectDomain: 'Default',
    });
    const user = { SNAP_KEYSTONE_URL: 'http://k:5000/v3', SNAP_KEYSTONE_USERNAME: 'nova', SNAP_KEYSTONE_PASSWORD: 'p' };
    expect(keystoneOptionsFromEnv(user)?.adminProjectId).toBeUndefined();
    expect(keystoneOptionsFromEnv({ ...user, SNAP_KEYSTONE_ADMIN_PROJECT: '8e0a3b6c1d2f4a5b9c7d0e1f2a3b4c5d' })?.adminProjectId).toBe('8e0a3b6c1d2f4a5b9c7d0e1f2a3b4c5d');
    expect(() => keystoneOptionsFromEnv({ ...user, SNAP_KEYSTONE_ADMIN_PROJECT: 'admin project' })).toThrow(/SNAP_KEYSTONE_ADMIN_PROJECT/);
  });
});
