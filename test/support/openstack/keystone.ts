// A real Keystone for integration tests (PyPI keystone in the cached venv): SQLite and fernet keys in
// a mkdtemp dir, `keystone-manage db_sync / fernet_setup / credential_setup / bootstrap`, served by
// gunicorn on a free loopback port; plus the admin calls the tests need (projects, users, roles,
// catalog endpoints) over Keystone's own v3 API.
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { KeystoneAuthenticator } from '../../../src/auth';
import { freePort } from '../free-port';
import { startWsgiService } from './wsgi-service';

const ROOT = join(__dirname, '..', '..', '..');
const VENV_BIN = join(ROOT, '.tools', 'venvs', 'keystone', 'bin');
const ADMIN_PASSWORD = 'keystone-admin-secret';

export interface KeystoneUser {
  userId: string;
  projectId: string;
  username: string;
  password: string;
  project: string;
}

export interface RunningKeystone {
  /** e.g. http://127.0.0.1:41234/v3 */
  url: string;
  adminPassword: string;
  /** A project-scoped password token and its body's ids. */
  passwordToken(username: string, password: string, project: string): Promise<string>;
  /** A system-scoped password token (`keystone-manage bootstrap` gives its admin the system admin role). */
  systemToken(username: string, password: string): Promise<string>;
  /** The id of a project, by name. */
  projectId(name: string): Promise<string>;
  /** A user with `roles` on a project (both created when missing). */
  createUser(username: string, project: string, roles: readonly string[]): Promise<KeystoneUser>;
  /** A catalog entry: service of `type` with a public endpoint at `url`. */
  registerEndpoint(type: string, name: string, url: string): Promise<void>;
  /** Our Keystone authenticator acting as `user` (a service user: its token for the image backend); admins of `adminProjectId` are cloud admins. */
  authenticatorFor(user: KeystoneUser, adminProjectId?: string): KeystoneAuthenticator;
  stop(): Promise<void>;
}

const IdSchema = (key: string) => z.object({ [key]: z.object({ id: z.string() }) });

export async function startKeystone(): Promise<RunningKeystone> {
  if (!existsSync(join(VENV_BIN, 'keystone-manage'))) throw new Error('no Keystone venv: run `node scripts/bootstrap.mjs --test` first');
  const dir = await mkdtemp(join(tmpdir(), 'keystone-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/v3`;
  const conf = join(dir, 'keystone.conf');
  await writeFile(
    conf,
    [
      '[DEFAULT]', 'use_stderr = true',
      '[database]', `connection = sqlite:///${join(dir, 'keystone.db')}`,
      '[token]', 'provider = fernet', 'expiration = 3600',
      '[fernet_tokens]', `key_repository = ${join(dir, 'fernet-keys')}`,
      '[fernet_receipts]', `key_repository = ${join(dir, 'fernet-keys')}`,
      '[credential]', `key_repository = ${join(dir, 'credential-keys')}`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, OS_KEYSTONE_CONFIG_FILES: conf };
  const manage = join(VENV_BIN, 'keystone-manage');
  const owner = userInfo().username;
  const { stop } = await startWsgiService({
    name: 'Keystone',
    venvBin: VENV_BIN,
    app: 'keystone_wsgi:application',
    port,
    env,
    readyUrl: url,
    dir,
    setup: [
      [manage, ['--config-file', conf, 'db_sync']],
      [manage, ['--config-file', conf, 'fernet_setup', '--keystone-user', owner, '--keystone-group', owner]],
      [manage, ['--config-file', conf, 'credential_setup', '--keystone-user', owner, '--keystone-group', owner]],
      [manage, ['--config-file', conf, 'bootstrap', '--bootstrap-password', ADMIN_PASSWORD, '--bootstrap-public-url', url, '--bootstrap-region-id', 'RegionOne']],
    ],
  });

  async function scopedToken(username: string, password: string, scope: unknown): Promise<string> {
    const res = await fetch(`${url}/auth/tokens?nocatalog`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: username, domain: { id: 'default' }, password } } }, scope } }),
    });
    const token = res.headers.get('x-subject-token');
    if (res.status !== 201 || token === null) throw new Error(`Keystone refused ${username}'s password: ${res.status}`);
    return token;
  }

  const passwordToken = (username: string, password: string, project: string): Promise<string> =>
    scopedToken(username, password, { project: { name: project, domain: { id: 'default' } } });

  async function admin<T extends z.ZodTypeAny>(method: string, path: string, schema: T, body?: unknown): Promise<z.output<T>> {
    const res = await fetch(`${url}/${path}`, {
      method,
      headers: { 'X-Auth-Token': await passwordToken('admin', ADMIN_PASSWORD, 'admin'), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`Keystone ${method} ${path}: ${res.status} ${await res.text()}`);
    const text = await res.text();
    return schema.parse(text.length === 0 ? {} : JSON.parse(text)) as z.output<T>;
  }

  async function findOrCreate(collection: 'projects' | 'roles', key: 'project' | 'role', name: string): Promise<string> {
    const found = await admin('GET', `${collection}?name=${encodeURIComponent(name)}`, z.object({ [collection]: z.array(z.object({ id: z.string() })) }));
    const existing = (found[collection] as { id: string }[])[0];
    if (existing !== undefined) return existing.id;
    const created = await admin('POST', collection, IdSchema(key), { [key]: { name, ...(key === 'project' ? { domain_id: 'default' } : {}) } });
    return (created[key] as { id: string }).id;
  }

  return {
    url,
    adminPassword: ADMIN_PASSWORD,
    passwordToken,
    systemToken: (username, password) => scopedToken(username, password, { system: { all: true } }),
    projectId: (name) => findOrCreate('projects', 'project', name),
    async createUser(username, project, roles) {
      const projectId = await findOrCreate('projects', 'project', project);
      const password = `${username}-secret-password`;
      const user = await admin('POST', 'users', IdSchema('user'), { user: { name: username, password, domain_id: 'default', default_project_id: projectId } });
      const userId = (user.user as { id: string }).id;
      for (const role of roles) await admin('PUT', `projects/${projectId}/users/${userId}/roles/${await findOrCreate('roles', 'role', role)}`, z.unknown());
      return { userId, projectId, username, password, project };
    },
    async registerEndpoint(type, name, endpointUrl) {
      const service = await admin('POST', 'services', IdSchema('service'), { service: { type, name } });
      await admin('POST', 'endpoints', IdSchema('endpoint'), { endpoint: { service_id: (service.service as { id: string }).id, interface: 'public', url: endpointUrl, region_id: 'RegionOne' } });
    },
    authenticatorFor(user, adminProjectId) {
      return new KeystoneAuthenticator({
        endpoint: { url, timeoutMs: 10_000 },
        ...(adminProjectId === undefined ? {} : { adminProjectId }),
        credentials: { kind: 'password', username: user.username, password: user.password, userDomain: 'Default', project: user.project, projectDomain: 'Default' },
      });
    },
    stop,
  };
}
