// A real Glance for integration tests (PyPI glance in the cached venv): SQLite, a file store, Keystone
// auth through keystonemiddleware with its own service user, served by gunicorn on a free loopback port.
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
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

export async function startGlance(keystone: RunningKeystone): Promise<RunningGlance> {
  if (!existsSync(join(VENV, 'bin', 'glance-manage'))) throw new Error('no Glance venv: run `node scripts/bootstrap.mjs --test` first');
  const service = await keystone.createUser('glance', 'service', ['admin', 'service']);
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
      '[glance_store]', 'stores = file', 'default_store = file', `filesystem_store_datadir = ${join(dir, 'images')}`,
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
