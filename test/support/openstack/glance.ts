// A real Glance for integration tests (PyPI glance in the cached venv): SQLite, a file store (or
// glance_store's rbd driver on the suite's Ceph), Keystone auth through keystonemiddleware with its
// own service user, served by gunicorn on a free loopback port.
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port';
import type { RunningKeystone } from './keystone';
import { startWsgiService } from './wsgi-service';

const ROOT = join(__dirname, '..', '..', '..');
const VENV = join(ROOT, '.tools', 'venvs', 'glance');

export interface RunningGlance {
  /** e.g. http://127.0.0.1:41235 */
  url: string;
  stop(): Promise<void>;
}

/** glance_store's rbd driver: Glance's images in `pool` of the cluster `confPath` names, read and written as `user`. */
export interface GlanceRbdStore {
  confPath: string;
  user: string;
  pool: string;
}

/** The [glance_store] section: the file store under `dir`, or the rbd store (Debian's rados/rbd bindings must be in the venv). */
function storeSection(dir: string, rbd: GlanceRbdStore | undefined): string[] {
  if (rbd === undefined) return ['[glance_store]', 'stores = file', 'default_store = file', `filesystem_store_datadir = ${join(dir, 'images')}`];
  const lib = join(VENV, 'lib');
  const sitePackages = readdirSync(lib).map((python) => join(lib, python, 'site-packages'));
  const linked = (module: string) => sitePackages.some((sp) => existsSync(sp) && readdirSync(sp).some((f) => f.startsWith(`${module}.cpython-`) && f.endsWith('.so')));
  if (!linked('rados') || !linked('rbd')) throw new Error("the Glance venv lacks Debian's rados/rbd bindings: run `node scripts/bootstrap.mjs --test` first");
  return ['[glance_store]', 'stores = rbd', 'default_store = rbd', `rbd_store_pool = ${rbd.pool}`, `rbd_store_user = ${rbd.user}`, `rbd_store_ceph_conf = ${rbd.confPath}`, 'rbd_store_chunk_size = 8'];
}

export async function startGlance(keystone: RunningKeystone, options: { rbd?: GlanceRbdStore } = {}): Promise<RunningGlance> {
  if (!existsSync(join(VENV, 'bin', 'glance-manage'))) throw new Error('no Glance venv: run `node scripts/bootstrap.mjs --test` first');
  // One Keystone may serve a file-store and an rbd-store Glance, each with its own service user.
  const service = await keystone.createUser(options.rbd === undefined ? 'glance' : 'glance-rbd', 'service', ['admin', 'service']);
  const dir = await mkdtemp(join(tmpdir(), 'glance-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  for (const sub of ['images', 'staging', 'tasks']) await mkdir(join(dir, sub));
  await copyFile(join(VENV, 'etc', 'glance', 'glance-api-paste.ini'), join(dir, 'glance-api-paste.ini'));
  const conf = join(dir, 'glance-api.conf');
  await writeFile(
    conf,
    [
      '[DEFAULT]', `worker_self_reference_url = ${url}`, 'enabled_import_methods = []',
      '[database]', `connection = sqlite:///${join(dir, 'glance.db')}`,
      ...storeSection(dir, options.rbd),
      '[os_glance_staging_store]', `filesystem_store_datadir = ${join(dir, 'staging')}`,
      '[os_glance_tasks_store]', `filesystem_store_datadir = ${join(dir, 'tasks')}`,
      '[keystone_authtoken]',
      `www_authenticate_uri = ${keystone.url}`, `auth_url = ${keystone.url}`, 'auth_type = password', 'interface = public',
      'project_domain_name = Default', 'user_domain_name = Default', 'project_name = service',
      `username = ${service.username}`, `password = ${service.password}`,
      '[paste_deploy]', 'flavor = keystone',
      '',
    ].join('\n'),
  );
  const { stop } = await startWsgiService({
    name: 'Glance',
    venvBin: join(VENV, 'bin'),
    app: 'glance_wsgi:application',
    port,
    env: { ...process.env, OS_GLANCE_CONFIG_DIR: dir },
    readyUrl: `${url}/versions`,
    dir,
    setup: [[join(VENV, 'bin', 'glance-manage'), ['--config-file', conf, 'db_sync']]],
  });
  return { url, stop };
}
