// `npm start`: the whole stack in the foreground — Temporal server + Web UI, image service, control
// worker, host worker, compute API (and a demo instance on an empty host). Ctrl-C stops all of it.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { portAnswers, waitForPort } from '../net/port-probe';
import { DEFAULT_ADMIN_PROJECT, describeTokens, ensureServiceToken, loadOrCreateTokens, tokenOptionsFromEnv } from '../auth';
import { PROJECT_ROOT, startDevServer, type DevServer } from '../temporal/dev-server';
import { SupervisedService, stopServices } from './child-services';
import { DEMO_INSTANCE_NAME, ensureDemoInstance, stopDemoInstance, type DemoInstance } from './demo-instance';
import { DemoStorageSchema, startDemoCeph, type DemoCeph } from './demo-storage';
import { waitForInstanceListed } from './inventory-readiness';
import { INSTANCE_NAME_RE } from '../testing/instance-layout';
import { DataDirSchema } from '../config/data-dir';
import { errorMessage } from '../contract';

const StackEnvSchema = z.object({
  SNAP_DATA_DIR: DataDirSchema,
  SNAP_LIBVIRT_URI: z.string().min(1).default('qemu:///system'),
  SNAP_TEMPORAL_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  SNAP_TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  SNAP_API_PORT: z.coerce.number().int().min(1).max(65535).default(8774),
  SNAP_IMAGE_PORT: z.coerce.number().int().min(1).max(65535).default(9292),
  SNAP_CONTROL_METRICS_PORT: z.coerce.number().int().min(1).max(65535).default(9464),
  SNAP_HOST_METRICS_PORT: z.coerce.number().int().min(1).max(65535).default(9465),
  /** true: a demo guest on a host with no domains; always: even beside other domains; false: none */
  SNAP_DEMO_INSTANCE: z.enum(['true', 'false', 'always']).default('true'),
  SNAP_DEMO_NAME: z.string().regex(INSTANCE_NAME_RE, 'a domain name of letters, digits, dash, underscore').default(DEMO_INSTANCE_NAME),
  /** file: the demo's disk is a qcow2 overlay under the data dir; rbd: in a single-node Ceph the stack brings up */
  SNAP_DEMO_STORAGE: DemoStorageSchema,
});

async function main(): Promise<void> {
  const env = StackEnvSchema.parse(process.env);
  const dataDir = resolve(PROJECT_ROOT, env.SNAP_DATA_DIR);
  for (const [name, port] of [['Temporal', env.SNAP_TEMPORAL_PORT], ['compute API', env.SNAP_API_PORT], ['image service', env.SNAP_IMAGE_PORT]] as const) {
    if (await portAnswers(port)) throw new Error(`port ${port} (${name}) is already in use: is another stack running?`);
  }
  await mkdir(join(dataDir, 'temporal'), { recursive: true });
  // The workers get the service token: it writes snapshot images and is refused by the compute API.
  const { tokens, serviceToken } = await ensureServiceToken(await loadOrCreateTokens(tokenOptionsFromEnv({ ...process.env, SNAP_DATA_DIR: dataDir })));

  let temporal: DevServer | undefined;
  let demo: DemoInstance | null = null;
  let ceph: DemoCeph | null = null;
  const services: SupervisedService[] = [];
  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the stack…\n');
    await stopServices(services);
    await temporal?.stop();
    if (demo) await stopDemoInstance(env.SNAP_LIBVIRT_URI, demo).catch((err: unknown) => process.stderr.write(`demo instance: ${String(err)}\n`));
    await ceph?.stop().catch((err: unknown) => process.stderr.write(`demo Ceph: ${String(err)}\n`));
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    temporal = await startDevServer({ port: env.SNAP_TEMPORAL_PORT, uiPort: env.SNAP_TEMPORAL_UI_PORT, dbFile: join(dataDir, 'temporal', 'temporal.db') });
    if (env.SNAP_DEMO_INSTANCE !== 'false') {
      if (env.SNAP_DEMO_STORAGE === 'rbd') ceph = await startDemoCeph(env.SNAP_LIBVIRT_URI);
      demo = await ensureDemoInstance(env.SNAP_LIBVIRT_URI, dataDir, { name: env.SNAP_DEMO_NAME, besideOtherDomains: env.SNAP_DEMO_INSTANCE === 'always', ...(ceph ? { rbdDiskFor: ceph.diskFor } : {}) });
    }
    const childEnv: NodeJS.ProcessEnv = {
      SNAP_DATA_DIR: dataDir,
      SNAP_EXIT_WITH_PARENT: '1',
      TEMPORAL_ADDRESS: temporal.address,
      SNAP_IMAGE_URL: `http://127.0.0.1:${env.SNAP_IMAGE_PORT}`,
      SNAP_IMAGE_PORT: String(env.SNAP_IMAGE_PORT),
      SNAP_IMAGE_DIR: join(dataDir, 'images'),
      SNAP_API_PORT: String(env.SNAP_API_PORT),
      SNAP_TEMPORAL_UI_URL: temporal.uiUrl,
      SNAP_INVENTORY_INTERVAL_S: process.env.SNAP_INVENTORY_INTERVAL_S ?? '15',
    };
    const tsx = (file: string, env: NodeJS.ProcessEnv = {}) => ({ command: process.execPath, args: ['--import', 'tsx', join('src', file)], env: { ...childEnv, ...env } });
    const say = (line: string): void => {
      process.stdout.write(`${line}\n`);
    };
    for (const [name, file, extraEnv] of [
      ['image-service', join('images', 'service', 'server-main.ts'), {}],
      // Only the workers hold the service token.
      ['control-worker', join('workers', 'control-worker-main.ts'), { SNAP_METRICS_PORT: String(env.SNAP_CONTROL_METRICS_PORT), SNAP_IMAGE_TOKEN: serviceToken }],
      // an RBD demo: the host reads the stack's cluster (an operator's own SNAP_RBD_* otherwise pass through)
      ['host-worker', join('workers', 'host-worker-main.ts'), { SNAP_METRICS_PORT: String(env.SNAP_HOST_METRICS_PORT), SNAP_IMAGE_TOKEN: serviceToken, ...ceph?.hostEnv }],
      ['compute-api', join('api', 'main.ts'), {}],
    ] as const) {
      const service = new SupervisedService({ name, ...tsx(file, extraEnv) }, PROJECT_ROOT, say);
      service.start();
      services.push(service);
    }
    await waitForPort('image service', env.SNAP_IMAGE_PORT);
    await waitForPort('compute API', env.SNAP_API_PORT);
    const admin = tokens.config.tokens.find((t) => t.projectId === DEFAULT_ADMIN_PROJECT && t.roles.includes('admin'));
    let listed = true;
    if (demo && admin) {
      listed = await waitForInstanceListed(`http://127.0.0.1:${env.SNAP_API_PORT}`, admin.token, demo.uuid, { timeoutMs: 180_000, say, stillStarting: () => !stopping });
    }
    // Ctrl-C during the wait: the shutdown speaks, not the banner.
    if (stopping) return;
    process.stdout.write(
      [
        '',
        'durable VM snapshots: the stack is up (Ctrl-C stops all of it)',
        `  Temporal gRPC   ${temporal.address}`,
        `  Temporal Web UI ${temporal.uiUrl ?? '(headless)'}`,
        `  compute API     http://127.0.0.1:${env.SNAP_API_PORT}/v2.1`,
        `  image service   http://127.0.0.1:${env.SNAP_IMAGE_PORT}/v2/images`,
        `  metrics         http://127.0.0.1:${env.SNAP_API_PORT}/metrics (API), :${env.SNAP_CONTROL_METRICS_PORT}/metrics (control worker), :${env.SNAP_HOST_METRICS_PORT}/metrics (host worker)`,
        `  tokens          ${tokens.file}`,
        tokens.created ? describeTokens(tokens.config).replace(/^/gm, '    ') : '',
        demo ? `  demo instance   ${demo.name} (${demo.uuid}), a Linux guest writing blocks to its disk${demo.rbdLayout?.rbd ? ` in RBD (${demo.rbdLayout.rbd.pool}/${demo.rbdLayout.rbd.image})` : ''}${listed ? '' : '; NOT in the inventory yet (see above)'}` : '  demo instance   none (this host already has domains)',
        ceph ? `  Ceph (demo)     ${ceph.cluster.confPath} (user ${ceph.cluster.client.user}), stopped with the stack` : '',
        demo ? `  guest console   ${demo.consolePath}` : '',
        '',
      ].join('\n'),
    );
  } catch (err) {
    process.stderr.write(`npm start failed: ${errorMessage(err)}\n`);
    await shutdown(1);
  }
}

void main();
