// Several nodes on one machine, all real processes: PostgreSQL (startTestPostgres), the image
// service, two compute API processes and two control worker processes on that one database, and
// one host worker process per host — host A on the system libvirtd, host B on a second daemon
// (second-libvirtd.ts) — each with its own real QEMU guests. Everything is torn down by stop(),
// also after a failed start.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { TokenConfig } from '../../src/auth';
import { createAuthenticator, imageServiceAuthenticator } from '../../src/auth';
import { GlanceHttpClient } from '../../src/images/client';
import { startImageServer } from '../../src/images/service';
import { InstanceStore, type Instance } from '../../src/store';
import { POWER_STATE_RUNNING } from '../../src/contract';
import { connectClient } from '../../src/temporal/connect';
import { freePort } from './free-port';
import { createInstanceFixture, TEST_INSTANCES_PATH, type InstanceFixture } from './instance-fixture';
import { startTestPostgres } from './postgres';
import { startSecondLibvirtd } from './second-libvirtd';
import { answersHttp, TestProcess, tsxEntry } from './test-process';

export const MN_TOKENS = { admin: 'mn-admin-0123456789abcdef', demo: 'mn-demo-0123456789abcdef', service: 'mn-service-0123456789abcdef' } as const;

export interface MultinodeHost {
  name: string;
  worker: TestProcess;
  instances: Instance[];
}

export interface MultinodeStack {
  apis: { url: string; proc: TestProcess }[];
  controls: TestProcess[];
  hosts: MultinodeHost[];
  store: InstanceStore;
  temporal: Client;
  admin: GlanceHttpClient;
  stop(): Promise<void>;
}

export interface MultinodeOptions {
  instancesPerHost: number;
  /** the control workers' reconciler settings (seconds) */
  reconcileGraceS: number;
  reconcileIntervalS: number;
}

export async function startMultinodeStack(options: MultinodeOptions): Promise<MultinodeStack> {
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), 'multinode-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pg = await startTestPostgres();
    cleanups.push(() => pg.stop());
    const tokens: TokenConfig = {
      tokens: [
        { token: MN_TOKENS.admin, projectId: 'admin', roles: ['admin', 'member'] },
        { token: MN_TOKENS.demo, projectId: 'demo', roles: ['member'] },
        { token: MN_TOKENS.service, projectId: 'service', roles: ['service'] },
      ],
    };
    const tokensFile = join(dir, 'tokens.json');
    await writeFile(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
    const images = await startImageServer({ port: 0, dataDir: join(dir, 'images'), maxImageBytes: 4 * 1024 ** 3, authenticate: imageServiceAuthenticator(createAuthenticator(tokens)) });
    cleanups.push(() => images.close());
    const store = await InstanceStore.open({ kind: 'postgres', connectionString: pg.connectionString });
    cleanups.push(() => store.close());
    const temporal = await connectClient();
    cleanups.push(() => temporal.connection.close());

    const common = { ...process.env, SNAP_STORE_POSTGRES_URL: pg.connectionString, SNAP_IMAGE_URL: images.url, SNAP_IMAGE_TOKEN: MN_TOKENS.service, SNAP_LOG_LEVEL: 'info', SNAP_DATA_DIR: dir };
    const started = async (proc: TestProcess): Promise<TestProcess> => {
      cleanups.push(() => proc.kill());
      await proc.start();
      return proc;
    };
    const controls: TestProcess[] = [];
    for (const n of [1, 2]) {
      controls.push(await started(new TestProcess({
        name: `control-${n}`,
        ...tsxEntry(join('src', 'workers', 'control-worker-main.ts')),
        env: { ...common, SNAP_RECONCILE_GRACE_S: String(options.reconcileGraceS), SNAP_RECONCILE_INTERVAL_S: String(options.reconcileIntervalS) },
        ready: (out) => out.includes('control worker polling'),
      })));
    }
    const apis: { url: string; proc: TestProcess }[] = [];
    for (const n of [1, 2]) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const proc = await started(new TestProcess({
        name: `api-${n}`,
        ...tsxEntry(join('src', 'api', 'main.ts')),
        env: { ...common, SNAP_API_PORT: String(port), SNAP_TOKENS_FILE: tokensFile, SNAP_LOG_LEVEL: 'warn' },
        ready: () => answersHttp(`${url}/`),
      }));
      apis.push({ url, proc });
    }

    const second = await startSecondLibvirtd();
    cleanups.push(() => second.stop());
    const tag = randomBytes(3).toString('hex');
    const hostSpecs = [
      { name: `mn-a-${tag}`, env: {} as Record<string, string>, connect: {} },
      { name: `mn-b-${tag}`, env: { SNAP_LIBVIRT_SOCKET: second.socketPath }, connect: { socketPath: second.socketPath } },
    ];
    const hosts: MultinodeHost[] = [];
    for (const spec of hostSpecs) {
      const fixtures: InstanceFixture[] = [];
      for (let i = 0; i < options.instancesPerHost; i += 1) {
        const f = await createInstanceFixture({ uri: 'qemu:///system', connectOptions: spec.connect, prefix: spec.name, linux: { workload: 'idle' } });
        cleanups.push(() => f.cleanup());
        fixtures.push(f);
      }
      const instances = await store.upsertFromInventory(fixtures.map((f) => ({
        uuid: f.instance.domain.uuid,
        name: f.instance.name,
        host: spec.name,
        projectId: 'demo',
        powerState: POWER_STATE_RUNNING,
        disks: [{ path: f.instance.overlayPath, format: 'qcow2' as const, target: 'vda' }],
        imageRef: null,
      })));
      const worker = await started(new TestProcess({
        name: `host-${spec.name}`,
        ...tsxEntry(join('src', 'workers', 'host-worker-main.ts')),
        env: { ...common, ...spec.env, SNAP_HOST: spec.name, SNAP_SNAPSHOTS_DIR: join(dir, `snapshots-${spec.name}`), SNAP_INVENTORY_INTERVAL_S: '3600', SNAP_INSTANCES_PATH: TEST_INSTANCES_PATH },
        ready: (out) => out.includes('host worker polling'),
      }));
      hosts.push({ name: spec.name, worker, instances });
    }
    return { apis, controls, hosts, store, temporal, admin: new GlanceHttpClient(images.url, MN_TOKENS.admin), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
