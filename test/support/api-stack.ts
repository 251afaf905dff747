// The whole API stack for integration tests, all real except libvirt: the Temporal dev server
// from globalSetup, a SQLite instance store file, the image service on an ephemeral port with
// the same token authenticator, the real workflow on workers with api-stub-activities, and
// startApi on an ephemeral port.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { startApi, type RunningApi, type StartApiOptions } from '../../src/api';
import type { TrustDelegator } from '../../src/api/volume-trust';
import type { WorkerVolumeAccess } from '../../src/cinder';
import { createAuthenticator, imageServiceAuthenticator, type IdentitySource } from '../../src/auth';
import { GlanceHttpClient, type Image } from '../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../src/images/service';
import { createLogger, type SnapshotMetrics } from '../../src/observability';
import type { InventoryFlavor, InventoryVolume } from '../../src/contract';
import { InstanceStore, type Instance } from '../../src/store';
import {
  CONTROL_TASK_QUEUE,
  hostTaskQueue,
  POWER_STATE_CRASHED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  type PowerState,
} from '../../src/contract';
import { connectClient, connectWorker } from '../../src/temporal/connect';
import type { CreateBackupPolicy } from '../../src/api/backup-policy';
import { ApiStubCloud, domainNameFor } from './api-stub-activities';

export const TOKENS = {
  admin: 'admin-token-0123456789abcdef',
  demo: 'demo-token-0123456789abcdef',
  other: 'other-token-0123456789abcdef',
  /** an admin role in project `other`: that project's admin only */
  otherAdmin: 'other-admin-token-0123456789abcdef',
  /** the workers' (the stub cloud's) token: the snapshot service identity */
  service: 'service-token-0123456789abcdef',
} as const;

export interface ApiStack {
  api: RunningApi;
  /** The embedded image service, or the real Glance the stack was pointed at. */
  images: Pick<RunningImageServer, 'url' | 'close'>;
  /** A second handle on the same SQLite file, for seeding and for asserting stored state. */
  store: InstanceStore;
  auth: IdentitySource;
  temporal: Client;
  cloud: ApiStubCloud;
  host: string;
  dir: string;
  /** Image client acting as `token`; by default the workers' service token. */
  imageClient(token?: string): GlanceHttpClient;
  /** projectId null: a domain that names no owner. */
  addInstance(options?: { projectId?: string | null; powerState?: PowerState; imageRef?: string | null; host?: string; userId?: string; flavor?: InventoryFlavor; volumes?: InventoryVolume[] }): Promise<Instance>;
  /** All non-deleted images whose instance_uuid property is `uuid`, as the workers' service identity sees them. */
  imagesOf(uuid: string): Promise<Image[]>;
  stop(): Promise<void>;
}

export interface ApiStackOptions {
  /** Start workers (needed when workflows must run); off for tests that only need the HTTP surface. */
  workers?: boolean;
  metadataQuota?: number;
  /** os_compute_api:os-create-backup (default Nova's project_member_or_admin) */
  createBackupPolicy?: CreateBackupPolicy;
  /** os_compute_api:os-backup-schedule (default project_member_or_admin) */
  backupSchedulePolicy?: CreateBackupPolicy;
  /** Another identity source than the fixed TOKENS (a real Keystone), and the token the workers send to the image service. */
  identity?: { source: IdentitySource; serviceToken: string };
  /** A Glance v2 endpoint to use instead of starting the embedded image service. */
  imageBackendUrl?: string;
  /** Cinder: the API's (the quota; its trusts under Keystone) and the control worker's */
  volumes?: { api: NonNullable<StartApiOptions['volume']>; trusts?: TrustDelegator; workers: WorkerVolumeAccess };
  /** The control worker's metrics (backup counters, last-backup age), when the test reads them */
  workerMetrics?: SnapshotMetrics;
}

export async function startApiStack(options: ApiStackOptions = {}): Promise<ApiStack> {
  const dir = await mkdtemp(join(tmpdir(), 'api-stack-'));
  const host = `apihost-${randomUUID().slice(0, 8)}`;
  const auth: IdentitySource = options.identity?.source ?? createAuthenticator({
    tokens: [
      { token: TOKENS.admin, projectId: 'admin', roles: ['admin', 'member'] },
      { token: TOKENS.demo, projectId: 'demo', roles: ['member'] },
      { token: TOKENS.other, projectId: 'other', roles: ['member'] },
      { token: TOKENS.otherAdmin, projectId: 'other', roles: ['admin', 'member'] },
      { token: TOKENS.service, projectId: 'service', roles: ['service'] },
    ],
  });
  const images: ApiStack['images'] =
    options.imageBackendUrl === undefined
      ? await startImageServer({ port: 0, dataDir: join(dir, 'images'), maxImageBytes: 1024 ** 3, authenticate: imageServiceAuthenticator(auth) })
      : { url: options.imageBackendUrl, close: async () => undefined };
  const storeConfig = { kind: 'sqlite' as const, path: join(dir, 'instances.sqlite') };
  const store = await InstanceStore.open(storeConfig);
  const temporal = await connectClient();
  const log = createLogger({ name: 'api-test', level: process.env.SNAP_TEST_LOG === '1' ? 'debug' : 'silent' });
  const cloud = new ApiStubCloud({ store, imageUrl: images.url, serviceToken: options.identity?.serviceToken ?? TOKENS.service, workDir: join(dir, 'work'), log, metrics: options.workerMetrics, ...(options.volumes === undefined ? {} : { volumes: options.volumes.workers }) });

  let stopWorkers = async (): Promise<void> => undefined;
  if (options.workers !== false) {
    const connection: NativeConnection = await connectWorker();
    const control = await Worker.create({
      connection,
      taskQueue: CONTROL_TASK_QUEUE,
      workflowsPath: require.resolve('../../src/workflows'),
      activities: cloud.controlActivities(),
    });
    const hostWorker = await Worker.create({ connection, taskQueue: hostTaskQueue(host), activities: cloud.hostActivities() });
    const running = Promise.all([control.run(), hostWorker.run()]);
    stopWorkers = async () => {
      control.shutdown();
      hostWorker.shutdown();
      await running;
      await connection.close();
    };
  }

  const api = await startApi({
    port: 0,
    store: storeConfig,
    imageUrl: images.url,
    auth,
    temporal,
    metadataQuota: options.metadataQuota,
    createBackupPolicy: options.createBackupPolicy,
    backupSchedulePolicy: options.backupSchedulePolicy,
    ...(options.volumes === undefined ? {} : { volume: options.volumes.api, trusts: options.volumes.trusts }),
    logger: log,
  });

  const imageClient = (token: string = options.identity?.serviceToken ?? TOKENS.service): GlanceHttpClient => new GlanceHttpClient(images.url, token);
  return {
    api,
    images,
    store,
    auth,
    temporal,
    cloud,
    host,
    dir,
    imageClient,
    async addInstance(o = {}) {
      const uuid = randomUUID();
      const [inst] = await store.upsertFromInventory([
        {
          uuid,
          name: domainNameFor(uuid),
          host: o.host ?? host,
          projectId: o.projectId === undefined ? 'demo' : o.projectId,
          powerState: o.powerState ?? POWER_STATE_RUNNING,
          disks: [{ path: `/fake/${uuid}/disk`, format: 'qcow2', target: 'vda' }],
          imageRef: o.imageRef === undefined ? null : o.imageRef,
          ...(o.userId === undefined ? {} : { userId: o.userId }),
          ...(o.flavor === undefined ? {} : { flavor: o.flavor }),
          ...(o.volumes === undefined ? {} : { volumes: o.volumes }),
        },
      ]);
      if (inst === undefined) throw new Error('instance was not stored');
      return inst;
    },
    async imagesOf(uuid) {
      return (await imageClient().list()).filter((i) => i.properties.instance_uuid === uuid);
    },
    async stop() {
      await api.close().catch(() => undefined);
      await stopWorkers();
      await temporal.connection.close();
      await store.close();
      await images.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { POWER_STATE_CRASHED, POWER_STATE_RUNNING, POWER_STATE_SHUTDOWN };
