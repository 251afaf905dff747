// The whole engine in one test process: real Temporal (globalSetup), a real SQLite instance store,
// the real image service over HTTP, the real control and host workers against the real libvirtd.
import type { CinderForProject } from '../../src/cinder';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { loadHostConfig, type HostConfig } from '../../src/host/host-config';
import { GlanceHttpClient, type ImageClient } from '../../src/images/client';
import { startImageServer } from '../../src/images/service';
import { InstanceStore, type Instance } from '../../src/store';
import { CONTROL_TASK_QUEUE, POWER_STATE_RUNNING, snapshotWorkflowId, WORKFLOW_TYPE, type PowerState, type SnapshotResult } from '../../src/contract';
import { connectClient, connectWorker } from '../../src/temporal/connect';
import { stepBarrierFromEnv } from '../../src/fault-points/step-barrier';
import { createControlWorker } from '../../src/workers/control-worker';
import { createHostWorker, type HostWorker } from '../../src/workers/host-worker';
import { TEST_INSTANCES_PATH, type InstanceFixture } from './instance-fixture';
import { fixtureInventoryDomain } from './fixture-inventory';
import { startServerProcess, stopServerProcess } from './image-server-process';

export interface Engine {
  client: Client;
  store: InstanceStore;
  images: ImageClient;
  host: HostWorker;
  hostConfig: HostConfig;
  dir: string;
  /** the control worker's log records (with `captureLogs`): notifications such as snapshot.end */
  logs: Record<string, unknown>[];
  /** registers the fixture's domain as an instance (what the host's inventory report does) */
  register(fixture: InstanceFixture, powerState?: PowerState, projectId?: string): Promise<Instance>;
  /** Nova's compute API: queued image + task_state image_snapshot_pending, then the workflow */
  startSnapshot(instanceUuid: string, name?: string): Promise<{ imageId: string; result: Promise<SnapshotResult> }>;
  stop(): Promise<void>;
}

export interface EngineOptions {
  /** the host worker's environment (SNAP_TEST_BARRIER_DIR included, as for host-worker-main) */
  hostEnv?: Record<string, string>;
  wrapImages?: (images: ImageClient) => ImageClient;
  /** the image backend the workers use (a real Glance); default: the embedded image service */
  images?: ImageClient;
  /** the control worker's image client, wrapped (an injected failure) */
  wrapControlImages?: (images: ImageClient) => ImageClient;
  /** Cinder for the control worker (the host worker's comes from SNAP_VOLUME_URL in hostEnv) */
  cinder?: CinderForProject;
  /** keep the control worker's info-level log records in `logs` */
  captureLogs?: boolean;
  /** the embedded image service in this process (default), or in its own as `npm start` runs it */
  imageService?: 'in-process' | 'own-process';
}

const MAX_IMAGE_BYTES = 4 * 1024 ** 3;

/** The embedded image service, and how to stop it. */
async function startEmbeddedImages(dataDir: string, where: 'in-process' | 'own-process'): Promise<{ url: string; close: () => Promise<void> }> {
  if (where === 'in-process') {
    const server = await startImageServer({ port: 0, dataDir, maxImageBytes: MAX_IMAGE_BYTES });
    return { url: server.url, close: () => server.close() };
  }
  const child = await startServerProcess(dataDir, { SNAP_IMAGE_MAX_BYTES: String(MAX_IMAGE_BYTES), SNAP_IMAGE_VERIFY_JOB_INTERVAL_HOURS: '0' });
  return { url: child.url, close: () => stopServerProcess(child.proc) };
}

export async function startEngine(options: EngineOptions = {}): Promise<Engine> {
  const dir = await mkdtemp(join(tmpdir(), 'snap-engine-'));
  const logs: Record<string, unknown>[] = [];
  const log = options.captureLogs
    ? pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
    : pino({ level: 'warn' });
  const hostName = `e2e-${randomBytes(3).toString('hex')}`;
  const hostConfig = loadHostConfig({ SNAP_HOST: hostName, SNAP_DATA_DIR: dir, SNAP_INVENTORY_INTERVAL_S: '3600', SNAP_INSTANCES_PATH: TEST_INSTANCES_PATH, ...options.hostEnv });
  const imageServer = await startEmbeddedImages(join(dir, 'images'), options.imageService ?? 'in-process');
  const images = options.images ?? new GlanceHttpClient(imageServer.url);
  const store = await InstanceStore.open({ kind: 'sqlite', path: join(dir, 'instances.sqlite') });
  const client = await connectClient();
  const connection: NativeConnection = await connectWorker();
  const { worker: control } = await createControlWorker({
    connection,
    store,
    images: options.wrapControlImages?.(images) ?? images,
    cinder: options.cinder,
    log,
    createImageRecord: async (instance, name, metadata) => {
      const image = await images.create({ name, properties: { ...metadata, image_type: 'snapshot', instance_uuid: instance.uuid } });
      return { imageId: image.id, status: image.status };
    },
  });
  const host = await createHostWorker({
    config: hostConfig,
    connection,
    client,
    log,
    images: options.wrapImages?.(images) ?? images,
    stepBarrier: stepBarrierFromEnv(options.hostEnv ?? {}),
  });
  const running = Promise.all([control.run(), host.run()]);

  return {
    client,
    store,
    images,
    host,
    hostConfig,
    dir,
    logs,
    async register(fixture, powerState = POWER_STATE_RUNNING, projectId) {
      const [instance] = await store.upsertFromInventory([fixtureInventoryDomain(fixture, hostName, powerState, projectId)]);
      if (!instance) throw new Error('inventory upsert returned nothing');
      return instance;
    },
    async startSnapshot(instanceUuid, name = 'e2e-snapshot') {
      const image = await images.create({ name, properties: { image_type: 'snapshot', instance_uuid: instanceUuid } });
      await store.setTaskStateOrThrow(instanceUuid, [null], 'image_snapshot_pending');
      const handle = await client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: snapshotWorkflowId(instanceUuid),
        args: [{ instanceUuid, name, imageId: image.id }],
      });
      return { imageId: image.id, result: handle.result() };
    },
    async stop() {
      control.shutdown();
      host.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
      await store.close();
      await imageServer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
