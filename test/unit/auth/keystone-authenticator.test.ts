// KeystoneAuthenticator against a small stand-in for Keystone's two token calls: what it caches and
// for how long, that a token's expiry wins over the cache, project scope and role mapping, and the
// renewal of a refused service token. (The real Keystone runs in test/integration/openstack.)
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeystoneAuthenticator, KeystoneUnavailable, keystoneOptionsFromEnv } from '../../../src/auth';

interface Known {
  project?: string;
  roles: string[];
  expiresAt: string;
}

let server: Server;
let url: string;
const tokens = new Map<string, Known>();
let validations = 0;
let issued = 0;
let serviceTokens = new Set<string>();

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
      const known = tokens.get(String(req.headers['x-subject-token']));
      if (known === undefined) return res.writeHead(404).end('{"error":{"code":404}}');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ token: { expires_at: known.expiresAt, user: { id: 'u-1' }, ...(known.project ? { project: { id: known.project } } : {}), roles: known.roles.map((name) => ({ name })) } }));
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
});

function authenticator(now: () => number = Date.now, password = 'service-secret'): KeystoneAuthenticator {
  return new KeystoneAuthenticator({
    endpoint: { url, timeoutMs: 2000 },
    credentials: { kind: 'password', username: 'snapshots', password, userDomain: 'Default', project: 'service', projectDomain: 'Default' },
    cacheSeconds: 300,
    negativeCacheSeconds: 10,
    now,
  });
}

const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

it('maps project scope and roles: admin → admin + member, anything else → member; unscoped → refused', async () => {
  tokens.set('t-member', { project: 'p-1', roles: ['reader', 'member'], expiresAt: inAnHour() });
  tokens.set('t-admin', { project: 'p-ops', roles: ['admin'], expiresAt: inAnHour() });
  tokens.set('t-unscoped', { roles: [], expiresAt: inAnHour() });
  const auth = authenticator();
  expect(await auth.authenticate('t-member')).toEqual({ projectId: 'p-1', userId: 'u-1', roles: ['member'], isAdmin: false });
  expect(await auth.authenticate('t-admin')).toMatchObject({ projectId: 'p-ops', roles: ['admin', 'member'], isAdmin: true });
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
  });
});
