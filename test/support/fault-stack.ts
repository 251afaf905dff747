// The engine as separate processes, each one killable with SIGKILL and restartable: a Temporal dev
// server of its own (free port, temp database, restarted on the same port and database), the image
// service, a control worker and a host worker (test barrier on, its own snapshots dir), sharing
// one SQLite instance store with the test. Nothing here touches `npm start`'s .data.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { GlanceHttpClient, type ImageClient } from '../../src/images/client';
import { InstanceStore, type Instance } from '../../src/store';
import { CONTROL_TASK_QUEUE, POWER_STATE_RUNNING, snapshotWorkflowId, WORKFLOW_TYPE, type PowerState } from '../../src/contract';
import { connectClient } from '../../src/temporal/connect';
import { PROJECT_ROOT, startDevServer, type DevServer } from '../../src/temporal/dev-server';
import { TestProcess } from './test-process';
import { startFaultProxy, type FaultProxy } from './fault-proxy';
import { freePort, portAnswers } from './free-port';
import { DEFAULT_TEST_URI, TEST_INSTANCES_PATH, type InstanceFixture } from './instance-fixture';
import { fixtureInventoryDomain } from './fixture-inventory';
import { startGlance } from './openstack/glance';
import { startKeystone } from './openstack/keystone';
import type { RbdGuests } from './rbd-guest';
import type { VolumeGuests } from './volume-guest';

export interface StartedSnapshot {
  imageId: string;
  workflowId: string;
}

export interface FaultStack {
  dir: string;
  host: string;
  barrierDir: string;
  snapshotsDir: string;
  store: InstanceStore;
  images: ImageClient;
  proxy: FaultProxy;
  client: Client;
  /** the embedded image service's process; a real Glance stays up (its image-down cells do not apply) */
  imageService: Pick<TestProcess, 'running' | 'start' | 'kill' | 'close'>;
  controlWorker: TestProcess;
  hostWorker: TestProcess;
  /** the Ceph cluster RBD cells put their guests' disks in; null: this stack runs no RBD cell */
  rbd: RbdGuests | null;
  /** the Cinder volume-backed cells boot their guests from; null: this stack runs no volume cell */
  volumes: VolumeGuests | null;
  /** live snapshots disabled on the host worker (Nova's disable_libvirt_livesnapshot) */
  readonly liveDisabled: boolean;
  /** restarts the host worker with live snapshots enabled or disabled (no-op when already so) */
  setLiveDisabled(disabled: boolean): Promise<void>;
  /** kill -9 of the Temporal server, then a fresh one on the same port and database */
  killTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  /** starts whatever an earlier, failed cell left down */
  ensureUp(): Promise<void>;
  register(fixture: InstanceFixture, powerState?: PowerState, projectId?: string): Promise<Instance>;
  /** Nova's compute API: queued image (with `properties` besides Nova's) + task_state image_snapshot_pending, then the workflow */
  startSnapshot(instanceUuid: string, properties?: Record<string, string>): Promise<StartedSnapshot>;
  stop(): Promise<void>;
}

export interface FaultStackOptions {
  liveDisabled?: boolean;
  hostEnv?: NodeJS.ProcessEnv;
  /** A real Glance behind a real Keystone instead of the embedded image service; the workers then upload as the Keystone service user. */
  imageBackend?: 'embedded' | 'glance';
  /** guests with their disk in this cluster; the host worker reads it as Nova's rbd settings say */
  rbd?: RbdGuests;
  /** guests booting from volumes of this Cinder; both workers reach it */
  volumes?: VolumeGuests;
  controlEnv?: NodeJS.ProcessEnv;
}

export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const dir = await mkdtemp(join(tmpdir(), 'snap-faults-'));
  const barrierDir = join(dir, 'barrier');
  const snapshotsDir = join(dir, 'snapshots');
  await mkdir(barrierDir);
  await mkdir(snapshotsDir, { mode: 0o711 });
  const host = `fault-${randomBytes(3).toString('hex')}`;
  const temporalPort = await freePort();
  const dbFile = join(dir, 'temporal.db');
  const storeFile = join(dir, 'instances.sqlite');
  const cleanups: (() => Promise<void>)[] = [async () => rm(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => process.stderr.write(`fault stack cleanup: ${String(err)}\n`));
  };

  try {
    let temporal: DevServer | null = null;
    const startTemporal = async () => {
      temporal = await startDevServer({ port: temporalPort, dbFile });
    };
    await startTemporal();
    cleanups.push(async () => {
      if (temporal?.process.pid !== undefined && temporal.process.exitCode === null) temporal.process.kill('SIGKILL');
    });
    const temporalAddress = `127.0.0.1:${temporalPort}`;
    const baseEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SNAP_EXIT_WITH_PARENT: '1',
      SNAP_LOG_LEVEL: 'info',
      SNAP_DATA_DIR: dir,
      TEMPORAL_ADDRESS: temporalAddress,
    };
    const tsx = (file: string) => ({ command: process.execPath, args: ['--import', 'tsx', join('src', file)], cwd: PROJECT_ROOT });
    const logFile = join(dir, 'services.log');

    const backend = options.imageBackend === 'glance' ? await startGlanceBackend(cleanups) : await startEmbeddedBackend(tsx, baseEnv, dir, logFile, cleanups);
    const { imageService, imageUrl } = backend;
    const proxy = await startFaultProxy(backend.port);
    cleanups.push(() => proxy.close());
    Object.assign(baseEnv, backend.workerEnv);

    const controlWorker = new TestProcess({
      name: 'control-worker',
      ...tsx(join('workers', 'control-worker-main.ts')),
      env: { ...baseEnv, SNAP_STORE_SQLITE: storeFile, SNAP_IMAGE_URL: imageUrl, SNAP_TEST_BARRIER_DIR: barrierDir, ...options.volumes?.workerEnv, ...options.controlEnv },
      readyLine: /control worker polling/,
      logFile,
      readyTimeoutMs: 180_000,
    });
    cleanups.push(() => controlWorker.close());
    let liveDisabled = options.liveDisabled ?? false;
    const hostEnv = (): NodeJS.ProcessEnv => ({
      ...baseEnv,
      SNAP_HOST: host,
      SNAP_LIBVIRT_URI: DEFAULT_TEST_URI,
      SNAP_SNAPSHOTS_DIR: snapshotsDir,
      SNAP_IMAGE_URL: proxy.url,
      SNAP_TEST_BARRIER_DIR: barrierDir,
      SNAP_DISABLE_LIVE_SNAPSHOT: String(liveDisabled),
      SNAP_INVENTORY_INTERVAL_S: '86400',
      SNAP_INSTANCES_PATH: TEST_INSTANCES_PATH,
      ...options.rbd?.hostEnv,
      ...options.volumes?.workerEnv,
      ...options.hostEnv,
    });
    const hostSpec = () => ({ name: 'host-worker', ...tsx(join('workers', 'host-worker-main.ts')), env: hostEnv(), readyLine: /host worker polling/, logFile });
    let hostWorker = new TestProcess(hostSpec());
    cleanups.push(() => hostWorker.close());
    // The store first: its migrations run once here, not raced by two processes opening it.
    const store = await InstanceStore.open({ kind: 'sqlite', path: storeFile });
    cleanups.push(() => store.close());
    await Promise.all([controlWorker.start(), hostWorker.start()]);
    const client = await connectClient({ address: temporalAddress, namespace: 'default' });
    cleanups.push(() => client.connection.close());
    const images = backend.images;

    return {
      dir,
      host,
      barrierDir,
      snapshotsDir,
      store,
      images,
      proxy,
      client,
      imageService,
      controlWorker,
      rbd: options.rbd ?? null,
      volumes: options.volumes ?? null,
      get hostWorker() {
        return hostWorker;
      },
      get liveDisabled() {
        return liveDisabled;
      },
      async setLiveDisabled(disabled) {
        if (disabled === liveDisabled && hostWorker.running) return;
        liveDisabled = disabled;
        await hostWorker.close();
        hostWorker = new TestProcess(hostSpec());
        await hostWorker.start();
      },
      async killTemporal() {
        const server = temporal;
        if (!server || server.process.pid === undefined) return;
        const gone = new Promise<void>((resolve) => server.process.once('exit', () => resolve()));
        if (server.process.exitCode === null) server.process.kill('SIGKILL');
        await gone;
      },
      startTemporal,
      async ensureUp() {
        const server: DevServer | null = temporal;
        if (server === null || server.process.exitCode !== null || server.process.signalCode !== null) await startTemporal();
        for (const p of [imageService, controlWorker, hostWorker]) if (!p.running) await p.start();
        proxy.mode = 'pass';
      },
      async register(fixture, powerState = POWER_STATE_RUNNING, projectId) {
        const [instance] = await store.upsertFromInventory([fixtureInventoryDomain(fixture, host, powerState, projectId)]);
        if (!instance) throw new Error('inventory upsert returned nothing');
        return instance;
      },
      async startSnapshot(instanceUuid, properties = {}) {
        const image = await images.create({ name: 'fault-snapshot', properties: { ...properties, image_type: 'snapshot', instance_uuid: instanceUuid } });
        await store.setTaskStateOrThrow(instanceUuid, [null], 'image_snapshot_pending');
        const workflowId = snapshotWorkflowId(instanceUuid);
        await client.workflow.start(WORKFLOW_TYPE, { taskQueue: CONTROL_TASK_QUEUE, workflowId, args: [{ instanceUuid, name: 'fault-snapshot', imageId: image.id }] });
        return { imageId: image.id, workflowId };
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

interface ImageBackend {
  imageService: FaultStack['imageService'];
  imageUrl: string;
  port: number;
  images: ImageClient;
  /** what the workers need to reach it (Keystone's service user for Glance) */
  workerEnv: NodeJS.ProcessEnv;
}

type Tsx = (file: string) => { command: string; args: string[]; cwd: string };

async function startEmbeddedBackend(tsx: Tsx, baseEnv: NodeJS.ProcessEnv, dir: string, logFile: string, cleanups: (() => Promise<void>)[]): Promise<ImageBackend> {
  const port = await freePort();
  const imageService = new TestProcess({
    name: 'image-service',
    ...tsx(join('images', 'service', 'server-main.ts')),
    env: { ...baseEnv, SNAP_IMAGE_AUTH: 'none', SNAP_IMAGE_PORT: String(port), SNAP_IMAGE_DIR: join(dir, 'images') },
    ready: () => portAnswers(port),
    logFile,
  });
  cleanups.push(() => imageService.close());
  await imageService.start();
  const imageUrl = `http://127.0.0.1:${port}`;
  return { imageService, imageUrl, port, images: new GlanceHttpClient(imageUrl), workerEnv: {} };
}

async function startGlanceBackend(cleanups: (() => Promise<void>)[]): Promise<ImageBackend> {
  const keystone = await startKeystone();
  cleanups.push(() => keystone.stop());
  const glance = await startGlance(keystone);
  cleanups.push(() => glance.stop());
  const service = await keystone.createUser('snapshots', 'service', ['admin', 'service']);
  const auth = keystone.authenticatorFor(service);
  const imageService = {
    running: true,
    start: async () => undefined,
    kill: async () => {
      throw new Error('image-down cells need the embedded image service');
    },
    close: async () => undefined,
  };
  return {
    imageService,
    imageUrl: glance.url,
    port: Number(new URL(glance.url).port),
    images: new GlanceHttpClient(glance.url, () => auth.serviceToken()),
    workerEnv: { SNAP_KEYSTONE_URL: keystone.url, SNAP_KEYSTONE_USERNAME: service.username, SNAP_KEYSTONE_PASSWORD: service.password, SNAP_KEYSTONE_PROJECT: 'service' },
  };
}
