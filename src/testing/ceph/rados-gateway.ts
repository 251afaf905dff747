// One RADOS Gateway (Ceph's S3 endpoint) on a running test cluster: the beast frontend on a free
// loopback port, its key, data dir and log under the cluster's dir, an S3 user made with
// `radosgw-admin user create` (its JSON answer checked). stop() ends the daemon (SIGTERM, SIGKILL
// after 2 s); the cluster's stop removes everything else. RGW creates its own pools on first start,
// a few seconds of the bring-up; they get 8 PGs each, as the cluster's, so one OSD holds them all.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { runCeph } from '../../ceph';
import { parseToolJson, runToolOutput } from '../../process/tool-process';
import { clusterPaths } from './ceph-config';
import { CephClusterError, type CephCluster } from './ceph-cluster';
import { freePortRange } from './port-range';

const RGW_ENTITY = 'client.rgw.gw';
const STOP_GRACE_MS = 2_000;

export interface RadosGateway {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** from the daemon's spawn until it answered S3 and the user existed */
  startMs: number;
  stop(): Promise<void>;
}

const UserCreateSchema = z.object({
  user_id: z.string(),
  keys: z.array(z.object({ user: z.string(), access_key: z.string().min(1), secret_key: z.string().min(1) })).min(1),
});

export async function startRadosGateway(cluster: CephCluster, options: { readyTimeoutMs?: number } = {}): Promise<RadosGateway> {
  const started = Date.now();
  const p = clusterPaths(cluster.dir);
  const keyring = path.join(p.keys, `${RGW_ENTITY}.keyring`);
  const dataDir = path.join(cluster.dir, 'rgw');
  await mkdir(dataDir, { recursive: true });
  await runCeph(cluster.admin, 'ceph', ['auth', 'get-or-create', RGW_ENTITY, 'mon', 'allow rw', 'osd', 'allow rwx', 'mgr', 'allow rw', '-o', keyring]);
  const port = (await freePortRange(1)).min;
  const common = ['-c', p.conf, '-n', RGW_ENTITY, '--keyring', keyring, '--osd-pool-default-pg-num', '8', '--osd-pool-default-pgp-num', '8'];
  const stderr = openSync(path.join(p.log, 'radosgw.stderr'), 'a');
  let child: ChildProcess;
  try {
    child = spawn('radosgw', ['-f', ...common, '--rgw-data', dataDir, '--rgw-frontends', `beast endpoint=127.0.0.1:${port}`, '--log-file', path.join(p.log, 'radosgw.log')], { stdio: ['ignore', 'ignore', stderr] });
  } finally {
    closeSync(stderr);
  }
  child.on('error', () => undefined);
  const stop = () => stopChild(child);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitAnswering(endpoint, child, options.readyTimeoutMs ?? 90_000);
    const out = await runToolOutput('radosgw-admin', [...common, 'user', 'create', '--uid', 'snap-store', '--display-name', 'snapshot image store', '--format', 'json']);
    const user = parseToolJson('radosgw-admin user create', UserCreateSchema, out.stdout);
    const key = user.keys[0] as z.infer<typeof UserCreateSchema>['keys'][number];
    return { endpoint, accessKeyId: key.access_key, secretAccessKey: key.secret_key, startMs: Date.now() - started, stop };
  } catch (err) {
    await stop();
    const log = await readFile(path.join(p.log, 'radosgw.stderr'), 'utf8').catch(() => '');
    throw new CephClusterError(`the RADOS Gateway did not come up: ${err instanceof Error ? err.message : String(err)}\n${log.trim().split('\n').slice(-15).join('\n')}`, { cause: err });
  }
}

/** Until the frontend answers an anonymous request (any HTTP status will do: RGW is serving). */
async function waitAnswering(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited(child)) throw new CephClusterError(`radosgw exited (${child.exitCode ?? child.signalCode})`);
    const answered = await fetch(endpoint, { signal: AbortSignal.timeout(2_000) }).then(
      (res) => res.arrayBuffer().then(() => true),
      () => false,
    );
    if (answered) return;
    if (Date.now() > deadline) throw new CephClusterError(`radosgw did not answer on ${endpoint} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await gone;
  clearTimeout(timer);
}
