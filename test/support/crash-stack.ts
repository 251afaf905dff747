// The control plane for API crash tests: the compute API as its own process (so it can be
// kill -9'd), the image service with token auth, an instance store file, and the real workflow
// with the real control activities and api-stub host activities on in-test workers. The API talks
// to Temporal through a freezable proxy, so a test can hold it between "image created + task_state
// set" and "workflow started".
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createAuthenticator, imageServiceAuthenticator, type TokenConfig } from '../../src/auth';
import { GlanceHttpClient, type Image } from '../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../src/images/service';
import { createLogger } from '../../src/observability';
import { SnapshotReconciler } from '../../src/reconciler';
import { InstanceStore, type Instance } from '../../src/store';
import { CONTROL_TASK_QUEUE, hostTaskQueue, POWER_STATE_RUNNING, type InventoryDomain } from '../../src/contract';
import { connectClient, connectWorker } from '../../src/temporal/connect';
import { ApiStubCloud, domainNameFor } from './api-stub-activities';
import { freePort } from './free-port';
import { startFreezableProxy, type FreezableProxy } from './freezable-proxy';
import { answersHttp, TestProcess, tsxEntry } from './test-process';

export const CRASH_TOKENS = { admin: 'crash-admin-0123456789abcdef', demo: 'crash-demo-0123456789abcdef', service: 'crash-service-0123456789abcdef' } as const;

export interface CrashStack {
  api: TestProcess;
  apiUrl: string;
  proxy: FreezableProxy;
  store: InstanceStore;
  temporal: Client;
  admin: GlanceHttpClient;
  reconciler: SnapshotReconciler;
  addInstances(n: number): Promise<Instance[]>;
  imagesOf(uuid: string): Promise<Image[]>;
  stop(): Promise<void>;
}

export async function startCrashStack(): Promise<CrashStack> {
  const dir = await mkdtemp(join(tmpdir(), 'crash-stack-'));
  const cleanups: (() => Promise<void>)[] = [async () => rm(dir, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const tokens: TokenConfig = {
      tokens: [
        { token: CRASH_TOKENS.admin, projectId: 'admin', roles: ['admin', 'member'] },
        { token: CRASH_TOKENS.demo, projectId: 'demo', roles: ['member'] },
        { token: CRASH_TOKENS.service, projectId: 'service', roles: ['service'] },
      ],
    };
    const tokensFile = join(dir, 'tokens.json');
    await writeFile(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
    const images: RunningImageServer = await startImageServer({ port: 0, dataDir: join(dir, 'images'), maxImageBytes: 1024 ** 3, authenticate: imageServiceAuthenticator(createAuthenticator(tokens)) });
    cleanups.push(() => images.close());
    const storePath = join(dir, 'instances.sqlite');
    const store = await InstanceStore.open({ kind: 'sqlite', path: storePath });
    cleanups.push(() => store.close());
    const temporal = await connectClient();
    cleanups.push(() => temporal.connection.close());
    const log = createLogger({ name: 'crash-test', level: 'silent' });
    const host = `crashhost-${randomUUID().slice(0, 8)}`;
    const cloud = new ApiStubCloud({ store, imageUrl: images.url, serviceToken: CRASH_TOKENS.service, workDir: join(dir, 'work'), log });
    const connection = await connectWorker();
    const control = await Worker.create({ connection, taskQueue: CONTROL_TASK_QUEUE, workflowsPath: require.resolve('../../src/workflows'), activities: cloud.controlActivities() });
    const hostWorker = await Worker.create({ connection, taskQueue: hostTaskQueue(host), activities: cloud.hostActivities() });
    const running = Promise.all([control.run(), hostWorker.run()]);
    cleanups.push(async () => {
      control.shutdown();
      hostWorker.shutdown();
      await running;
      await connection.close();
    });
    const proxy = await startFreezableProxy(process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233');
    cleanups.push(() => proxy.close());
    const port = await freePort();
    const apiUrl = `http://127.0.0.1:${port}`;
    const api = new TestProcess({
      name: 'compute-api',
      ...tsxEntry(join('src', 'api', 'main.ts')),
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: proxy.address,
        SNAP_API_PORT: String(port),
        SNAP_IMAGE_URL: images.url,
        SNAP_STORE_SQLITE: storePath,
        SNAP_DATA_DIR: dir,
        SNAP_TOKENS_FILE: tokensFile,
        SNAP_LOG_LEVEL: 'warn',
      },
      ready: () => answersHttp(`${apiUrl}/`),
    });
    cleanups.push(() => api.kill());
    await api.start();
    const admin = new GlanceHttpClient(images.url, CRASH_TOKENS.admin);
    return {
      api,
      apiUrl,
      proxy,
      store,
      temporal,
      admin,
      reconciler: new SnapshotReconciler({ client: temporal, store, images: admin, graceMs: 0, log }),
      async addInstances(n) {
        const rows = Array.from({ length: n }, (): InventoryDomain => {
          const uuid = randomUUID();
          return { uuid, name: domainNameFor(uuid), host, projectId: 'demo', powerState: POWER_STATE_RUNNING, disks: [{ path: `/fake/${uuid}/disk`, format: 'qcow2' as const, target: 'vda' }], imageRef: null };
        });
        return store.upsertFromInventory(rows);
      },
      async imagesOf(uuid) {
        return (await admin.list()).filter((i) => i.properties.instance_uuid === uuid);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
