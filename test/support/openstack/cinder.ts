// A real Cinder for integration tests (PyPI cinder in the cached venv, Debian's rados/rbd bindings
// linked in): SQLite, the RBD driver on a `volumes` pool of the test file's Ceph, RabbitMQ from
// Debian on loopback; Keystone auth when the test runs a Keystone, else noauth (project ids in the
// URL must then look like hex uuids). Started in the order that works: cinder-volume, then the
// scheduler once the volume service has published its capabilities (a publish sent before the
// scheduler listens is lost until the next one, 60 s later), then the API; ready when get_pools
// lists the backend. stop() ends every service (SIGTERM, SIGKILL after 2 s) and removes the dir.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { runCeph } from '../../../src/ceph';
import { errorMessage } from '../../../src/contract';
import { runToolOutput } from '../../../src/process/tool-process';
import type { CephCluster } from '../../../src/testing/ceph/ceph-cluster';
import { keyringPath } from '../../../src/testing/ceph/ceph-config';
import { freePort } from '../free-port';
import { startRabbitmq, waitForPort, type RunningRabbitmq } from './rabbitmq';
import { startServiceProcess, type ServiceProcess } from './service-process';
import { runTool } from './wsgi-service';

const VENV = join(__dirname, '..', '..', '..', '.tools', 'venvs', 'cinder');
const VENV_BIN = join(VENV, 'bin');
// The entry points run through the venv's python, not their #! line: that names the path the venv
// was built at, which a venv shared between checkouts outlives.
const VENV_PYTHON = join(VENV_BIN, 'python');
export const CINDER_POOL = 'volumes';
export const CINDER_CEPH_USER = 'cinder';
/** The backend's name: volume hosts are `<host>@<backend>#<backend>`. */
export const CINDER_BACKEND = 'ceph';
const CINDER_HOST = 'snap-cinder';
// noauth: Cinder's routes take only hex project ids
const NOAUTH_ADMIN_PROJECT = 'adadadadadadadadadadadadadadadad';

export interface CinderKeystone {
  /** Keystone's v3 URL */
  url: string;
  /** a user with the `service` and `admin` roles in project `service`, for keystonemiddleware */
  username: string;
  password: string;
  project: string;
}

export interface RunningCinder {
  /** the services' state, config and logs, RabbitMQ's too (removed on stop) */
  dir: string;
  /** every port its services listen on: none answers after stop() */
  ports: number[];
  /** e.g. http://127.0.0.1:41234/v3 (append the project id, as the catalog's `…/v3/%(project_id)s`) */
  baseUrl: string;
  /** the backend's pool name, as get_pools lists it */
  pool: string;
  /** the cephx user Cinder's driver uses, with rbd caps on `volumes` (and `vms`, `images`) */
  cephUser: string;
  /** the cephx user's key (base64), for the libvirt secret of a volume disk */
  cephKey: string;
  /** how long the services took to be ready, with and without RabbitMQ's start */
  startMs: { rabbitmq: number; cinder: number; total: number };
  /** resident memory of each service now, bytes */
  rss(): Promise<Record<string, number>>;
  /** a noauth token acting as admin of `projectId` (noauth only) */
  noauthToken(projectId: string): string;
  /** cinder-volume, for fault tests: stopped and started again (ready once its driver is; a running one is left be), or hung (SIGSTOP) and resumed */
  volumeService: { stop(): Promise<void>; start(): Promise<void>; pause(): void; resume(): void };
  /** the broker, stopped and started again on its ports (its clients reconnect on their own) */
  broker: Pick<RunningRabbitmq, 'stopBroker' | 'startBroker'>;
  stop(): Promise<void>;
}

/** The installed Cinder's version, as its package metadata says. */
export async function cinderVersion(): Promise<string> {
  const { stdout } = await runToolOutput(VENV_PYTHON, ['-c', 'import importlib.metadata as m; print(m.version("cinder"))']);
  return `Cinder ${stdout.trim()}`;
}

const PoolsSchema = z.object({ pools: z.array(z.object({ name: z.string() })) });

export async function startCinder(ceph: CephCluster, options: { keystone?: CinderKeystone; readyTimeoutMs?: number } = {}): Promise<RunningCinder> {
  if (!existsSync(join(VENV_BIN, 'cinder-volume'))) throw new Error('no Cinder venv: run `node scripts/bootstrap.mjs --test` first');
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'snap-cinder-'));
  const services: ServiceProcess[] = [];
  let rabbitmq: RunningRabbitmq | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all(services.map((s) => s.stop()));
    await rabbitmq?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const conf = join(dir, 'cinder.conf');
    const plan = { dir, port, cephConf: ceph.confPath, keystone: options.keystone };
    await mkdir(join(dir, 'log'));
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${VENV_BIN}:${process.env.PATH ?? ''}` };
    // the schema needs no broker: db sync runs while RabbitMQ starts, from a conf without its URL
    const dbSynced = (async () => {
      const dbConf = join(dir, 'cinder-db.conf');
      await writeFile(dbConf, renderCinderConf({ ...plan, transportUrl: 'rabbit://' }));
      await runTool(VENV_PYTHON, [join(VENV_BIN, 'cinder-manage'), '--config-file', dbConf, 'db', 'sync'], env);
    })();
    const rabbitStarted = startRabbitmq({ parentDir: dir }).then((r) => (rabbitmq = r));
    // all settled before a failure is thrown, so stop() finds whatever did start
    const settled = await Promise.allSettled([rabbitStarted, cinderCephUser(ceph), dbSynced]);
    const [rabbit, cephKey] = [settledValue(settled[0]), settledValue(settled[1]), settledValue(settled[2])];
    const cinderStarted = Date.now();
    await writeFile(conf, renderCinderConf({ ...plan, transportUrl: rabbit.transportUrl }));
    const start = (name: string, logName = name): ServiceProcess => {
      const service = startServiceProcess(name, VENV_PYTHON, [join(VENV_BIN, name), '--config-file', conf], env, join(dir, 'log', `${logName}.log`));
      services.push(service);
      return service;
    };
    let volume = start('cinder-volume');
    // the API starts meanwhile: it takes the longest to answer, and needs no other service
    start('cinder-api');
    await waitForLog(volume, 'Driver post RPC initialization completed', services, options.readyTimeoutMs ?? 90_000);
    start('cinder-scheduler');
    await waitForPort(port, services, options.readyTimeoutMs ?? 90_000);
    const baseUrl = `http://127.0.0.1:${port}/v3`;
    const admin = options.keystone === undefined ? { token: `admin:${NOAUTH_ADMIN_PROJECT}`, projectId: NOAUTH_ADMIN_PROJECT } : await keystoneToken(options.keystone);
    await waitForPools(`${baseUrl}/${admin.projectId}`, admin.token, services, options.readyTimeoutMs ?? 90_000);
    const now = Date.now();
    let volumeStarts = 1;
    return {
      dir,
      ports: [port, ...rabbit.ports],
      baseUrl,
      pool: CINDER_POOL,
      cephUser: CINDER_CEPH_USER,
      cephKey,
      startMs: { rabbitmq: rabbit.startMs, cinder: now - cinderStarted, total: now - started },
      async rss() {
        const entries = await Promise.all(services.map(async (s) => [s.name, await s.rss()] as const));
        return { rabbitmq: await rabbit.rss(), ...Object.fromEntries(entries) };
      },
      noauthToken(projectId) {
        if (options.keystone !== undefined) throw new Error('this Cinder validates Keystone tokens');
        return `admin:${projectId}`;
      },
      volumeService: {
        stop: () => volume.stop(),
        async start() {
          if (!volume.exited()) return;
          services.splice(services.indexOf(volume), 1);
          // a log of its own: the ready line of the first start must not count
          volume = start('cinder-volume', `cinder-volume-${++volumeStarts}`);
          await waitForLog(volume, 'Driver post RPC initialization completed', services, options.readyTimeoutMs ?? 90_000);
        },
        pause: () => volume.signal('SIGSTOP'),
        resume: () => volume.signal('SIGCONT'),
      },
      broker: rabbit,
      stop,
    };
  } catch (err) {
    const tails = await Promise.all(services.map(async (s) => `--- ${s.name}\n${await s.logTail(15)}`));
    await stop();
    throw new Error(`Cinder did not come up: ${errorMessage(err)}\n${tails.join('\n')}`, { cause: err });
  }
}

function settledValue<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

/** The `volumes` pool and Cinder's cephx user (rbd on volumes, read on images), as a deployment has them; returns the user's key. */
async function cinderCephUser(ceph: CephCluster): Promise<string> {
  await runCeph(ceph.admin, 'ceph', ['osd', 'pool', 'create', CINDER_POOL, '8', '8']);
  await runCeph(ceph.admin, 'rbd', ['pool', 'init', CINDER_POOL]);
  const keyring = await runCeph(ceph.admin, 'ceph', [
    'auth', 'get-or-create', `client.${CINDER_CEPH_USER}`,
    'mon', 'profile rbd',
    'osd', `profile rbd pool=${CINDER_POOL}, profile rbd pool=vms, profile rbd-read-only pool=images`,
    'mgr', `profile rbd pool=${CINDER_POOL}`,
  ]);
  // where the cluster's conf finds every user's keyring
  await writeFile(keyringPath(ceph.dir, `client.${CINDER_CEPH_USER}`), keyring, { mode: 0o600 });
  const key = /^\s*key\s*=\s*(\S+)\s*$/m.exec(keyring)?.[1];
  if (key === undefined) throw new Error('ceph auth get-or-create answered without a key');
  return key;
}

interface CinderConfPlan {
  dir: string;
  port: number;
  transportUrl: string;
  cephConf: string;
  keystone: CinderKeystone | undefined;
}

function renderCinderConf(plan: CinderConfPlan): string {
  const auth = plan.keystone === undefined
    ? ['auth_strategy = noauth']
    : ['auth_strategy = keystone'];
  const keystone = plan.keystone === undefined
    ? []
    : [
        '[keystone_authtoken]',
        `www_authenticate_uri = ${plan.keystone.url}`,
        `auth_url = ${plan.keystone.url}`,
        'auth_type = password',
        `username = ${plan.keystone.username}`,
        `password = ${plan.keystone.password}`,
        `project_name = ${plan.keystone.project}`,
        'user_domain_id = default',
        'project_domain_id = default',
        'service_token_roles_required = true',
        // the test Keystone's catalog has public endpoints only (keystonemiddleware looks for internal)
        'interface = public',
      ];
  return [
    '[DEFAULT]',
    `host = ${CINDER_HOST}`,
    'my_ip = 127.0.0.1',
    `state_path = ${plan.dir}`,
    `transport_url = ${plan.transportUrl}`,
    ...auth,
    `api_paste_config = ${join(VENV, 'etc', 'cinder', 'api-paste.ini')}`,
    // the filters a non-admin may list by (attachments by volume_id, snapshots by metadata), as packages install it in /etc/cinder
    `resource_query_filters_file = ${join(VENV, 'etc', 'cinder', 'resource_filters.json')}`,
    'osapi_volume_listen = 127.0.0.1',
    `osapi_volume_listen_port = ${plan.port}`,
    'osapi_volume_workers = 1',
    `enabled_backends = ${CINDER_BACKEND}`,
    'use_stderr = true',
    // no rootwrap, no iSCSI: the RBD driver talks to the cluster through librados only
    'rootwrap_config = /dev/null',
    '[database]',
    `connection = sqlite:///${join(plan.dir, 'cinder.sqlite')}`,
    '[oslo_concurrency]',
    `lock_path = ${join(plan.dir, 'locks')}`,
    '[oslo_messaging_notifications]',
    'driver = noop',
    `[${CINDER_BACKEND}]`,
    'volume_driver = cinder.volume.drivers.rbd.RBDDriver',
    `volume_backend_name = ${CINDER_BACKEND}`,
    `rbd_pool = ${CINDER_POOL}`,
    `rbd_ceph_conf = ${plan.cephConf}`,
    `rbd_user = ${CINDER_CEPH_USER}`,
    // a volume made from a snapshot stays a clone: the test reads it, it need not be flattened
    'rbd_flatten_volume_from_snapshot = false',
    ...keystone,
    '',
  ].join('\n');
}

const TokenBodySchema = z.object({ token: z.object({ project: z.object({ id: z.string() }) }) });

async function keystoneToken(keystone: CinderKeystone): Promise<{ token: string; projectId: string }> {
  const res = await fetch(`${keystone.url}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: keystone.username, domain: { id: 'default' }, password: keystone.password } } },
        scope: { project: { name: keystone.project, domain: { id: 'default' } } },
      },
    }),
  });
  const token = res.headers.get('x-subject-token');
  if (res.status !== 201 || token === null) throw new Error(`Keystone refused Cinder's service user: ${res.status}`);
  return { token, projectId: TokenBodySchema.parse(await res.json()).token.project.id };
}

async function waitForLog(service: ServiceProcess, text: string, services: readonly ServiceProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = services.find((s) => s.exited());
    if (dead !== undefined) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode})`);
    if ((await readFile(service.logPath, 'utf8').catch(() => '')).includes(text)) return;
    if (Date.now() > deadline) throw new Error(`${service.name} did not log "${text}" within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Polls get_pools with a short client timeout: a call sent before the scheduler's queue exists waits 60 s for its RPC. */
async function waitForPools(projectUrl: string, token: string, services: readonly ServiceProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const dead = services.find((s) => s.exited());
    if (dead !== undefined) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode})`);
    try {
      const res = await fetch(`${projectUrl}/scheduler-stats/get_pools`, { headers: { 'X-Auth-Token': token }, signal: AbortSignal.timeout(3_000) });
      const body = await res.text();
      if (res.ok) {
        const pools = PoolsSchema.parse(JSON.parse(body)).pools;
        if (pools.some((p) => p.name.endsWith(`#${CINDER_BACKEND}`))) return;
        last = `pools: ${pools.map((p) => p.name).join(', ') || 'none'}`;
      } else {
        last = `${res.status} ${body.slice(0, 200)}`;
      }
    } catch (err) {
      last = errorMessage(err);
    }
    if (Date.now() > deadline) throw new Error(`the scheduler did not list the ${CINDER_BACKEND} backend within ${timeoutMs / 1000} s: ${last}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
