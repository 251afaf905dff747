// A throw-away single-node Ceph for tests and the demo: 1 mon, 1 mgr, 1 OSD on BlueStore in a
// sparse file, cephx, loopback only, size-1 pools `vms` and `images` (rbd-initialised) and a client
// user with rbd caps on them. Everything lives under one temp dir; stop() ends every daemon
// (SIGTERM, SIGKILL after 2 s) and removes the dir. The "micro-osd" bring-up of ceph-csi and
// go-ceph: keys made offline and handed to the mon at mkfs, the OSD formatted while the mon starts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { callCeph, runCeph, type CephConnection } from '../../ceph';
import { runTool } from '../../process/tool-process';
import { clusterPaths, keyringPath, MGR_ID, MON_ID, optionalMgrModules, OSD_ID, renderCephConf, type ClusterPlan } from './ceph-config';
import { freePortRange } from './port-range';
import { errorMessage } from '../../contract';

export const CLUSTER_POOLS = ['vms', 'images'] as const;
/** the cephx user the host and libvirt use (Nova's rbd_user) */
export const CLIENT_USER = 'snap';

export interface CephCluster {
  dir: string;
  fsid: string;
  confPath: string;
  /** the mon's address, as a libvirt disk's <host> names it */
  monHost: { host: '127.0.0.1'; port: number };
  admin: CephConnection;
  /** the rbd user with caps on the pools only */
  client: CephConnection;
  /** the client user's key (base64), for a libvirt secret */
  clientKey: string;
  /** how long bring-up took, to HEALTH_OK with all PGs active+clean */
  startMs: number;
  /** resident memory of each daemon now, bytes */
  rss(): Promise<Record<string, number>>;
  /** Faults: SIGKILL of the OSD (returns once it is gone); startOsd() brings it back and waits until its PGs are active again. */
  killOsd(): Promise<void>;
  startOsd(): Promise<void>;
  /** Faults: the mon stopped with SIGSTOP (its port still accepts, nothing answers) and continued with SIGCONT. */
  pauseMon(): void;
  resumeMon(): void;
  stop(): Promise<void>;
}

export class CephClusterError extends Error {
  override readonly name = 'CephClusterError';
}

interface Daemon {
  name: string;
  child: ChildProcess;
}

const HealthSchema = z.object({
  health: z.object({ status: z.string() }),
  pgmap: z.object({ num_pgs: z.number(), pgs_by_state: z.array(z.object({ state_name: z.string(), count: z.number() })).default([]) }),
  osdmap: z.object({ num_up_osds: z.number(), num_in_osds: z.number() }).passthrough(),
});

const OsdDumpSchema = z.object({ osds: z.array(z.object({ osd: z.number(), up_from: z.number() }).passthrough()) }).passthrough();

const STOP_GRACE_MS = 2_000;

/** The osdmap epoch from which the OSD has been up (a restarted OSD boots into a later one). */
async function osdUpFrom(admin: CephConnection): Promise<number> {
  const dump = await callCeph(admin, 'ceph', ['osd', 'dump'], OsdDumpSchema);
  return dump.osds.find((o) => o.osd === OSD_ID)?.up_from ?? 0;
}

export async function startCephCluster(options: { osdBytes?: number; readyTimeoutMs?: number } = {}): Promise<CephCluster> {
  const started = Date.now();
  const dir = await mkdtemp(path.join(tmpdir(), 'snap-ceph-'));
  const daemons: Daemon[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(daemons.map((d) => stopDaemon(d)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // the mon's two ports, then the mgr's (2) and the OSD's (8: public, cluster, two heartbeats, each v2 and v1), with room
    const range = await freePortRange(32);
    const plan: ClusterPlan = {
      dir,
      fsid: randomUUID(),
      monPorts: { v2: range.min, v1: range.min + 1 },
      portRange: { min: range.min + 2, max: range.max },
      osdBytes: options.osdBytes ?? 8 * 1024 ** 3,
      disabledMgrModules: optionalMgrModules(),
    };
    const p = clusterPaths(dir);
    await Promise.all([p.keys, p.monData, p.mgrData, p.osdData, p.run, p.log].map((d) => mkdir(d, { recursive: true })));
    await writeFile(p.conf, renderCephConf(plan));
    const admin: CephConnection = { confPath: p.conf, user: 'admin', timeoutMs: 30_000 };
    const client: CephConnection = { confPath: p.conf, user: CLIENT_USER, timeoutMs: 30_000 };
    const clientKey = await makeKeys(dir);
    await runTool('monmaptool', ['--create', '--fsid', plan.fsid, '--addv', MON_ID, `[v2:127.0.0.1:${plan.monPorts.v2},v1:127.0.0.1:${plan.monPorts.v1}]`, p.monmap]);
    const osdUuid = randomUUID();
    await Promise.all([
      (async () => {
        await runTool('ceph-mon', ['-c', p.conf, '--mkfs', '-i', MON_ID, '--monmap', p.monmap, '--keyring', p.monKeyring]);
        // the mgr spends seconds loading its python modules: it starts with the mon
        daemons.push(startDaemon(dir, 'ceph-mon', MON_ID), startDaemon(dir, 'ceph-mgr', MGR_ID));
      })(),
      // --no-mon-config: the OSD formats its store without asking the mon, which is starting meanwhile
      runTool('ceph-osd', ['-c', p.conf, '-i', String(OSD_ID), '--mkfs', '--osd-uuid', osdUuid, '--no-mon-config']),
    ]);
    await runCeph(admin, 'ceph', ['osd', 'new', osdUuid, String(OSD_ID)]);
    daemons.push(startDaemon(dir, 'ceph-osd', String(OSD_ID)));
    await Promise.all(CLUSTER_POOLS.map((pool) => runCeph(admin, 'ceph', ['osd', 'pool', 'create', pool, '8', '8'])));
    await Promise.all(CLUSTER_POOLS.map((pool) => runCeph(admin, 'rbd', ['pool', 'init', pool])));
    await waitHealthy(admin, daemons, options.readyTimeoutMs ?? 90_000);
    const signalMon = (signal: NodeJS.Signals) => {
      const mon = daemons.find((d) => d.name === `ceph-mon.${MON_ID}`);
      if (mon && !exited(mon.child)) mon.child.kill(signal);
    };
    const osdName = `ceph-osd.${OSD_ID}`;
    let killedOsdUpFrom = 0;
    return {
      dir,
      fsid: plan.fsid,
      confPath: p.conf,
      monHost: { host: '127.0.0.1', port: plan.monPorts.v1 },
      admin,
      client,
      clientKey,
      startMs: Date.now() - started,
      rss: () => daemonRss(daemons),
      async killOsd() {
        const i = daemons.findIndex((d) => d.name === osdName);
        const osd = daemons[i];
        if (osd === undefined) return;
        killedOsdUpFrom = await osdUpFrom(admin);
        daemons.splice(i, 1);
        await stopDaemon(osd, 'SIGKILL');
      },
      async startOsd() {
        if (daemons.some((d) => d.name === osdName)) throw new CephClusterError(`${osdName} is running`);
        daemons.push(startDaemon(dir, 'ceph-osd', String(OSD_ID)));
        // the map still shows the killed OSD up and its PGs clean until the new one has booted
        const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
        while ((await osdUpFrom(admin).catch(() => killedOsdUpFrom)) <= killedOsdUpFrom) {
          if (Date.now() > deadline) throw new CephClusterError(`${osdName} did not boot again`);
          await new Promise((r) => setTimeout(r, 250));
        }
        await waitHealthy(admin, daemons, Math.max(1_000, deadline - Date.now()), 'pgs active');
      },
      pauseMon: () => signalMon('SIGSTOP'),
      resumeMon: () => signalMon('SIGCONT'),
      stop,
    };
  } catch (err) {
    const logs = await logTails(dir);
    await stop();
    throw new CephClusterError(`single-node Ceph did not come up: ${errorMessage(err)}${logs}`, { cause: err });
  }
}

/** Keys for every entity, made offline; the mon gets them all at mkfs. Returns the client user's key. */
async function makeKeys(dir: string): Promise<string> {
  const p = clusterPaths(dir);
  const pools = CLUSTER_POOLS.map((pool) => `profile rbd pool=${pool}`).join(', ');
  const entities: [string, string[]][] = [
    ['client.admin', ['mon', 'allow *', 'osd', 'allow *', 'mgr', 'allow *', 'mds', 'allow *']],
    [`osd.${OSD_ID}`, ['mon', 'allow profile osd', 'mgr', 'allow profile osd', 'osd', 'allow *']],
    [`mgr.${MGR_ID}`, ['mon', 'allow profile mgr', 'osd', 'allow *', 'mds', 'allow *']],
    [`client.${CLIENT_USER}`, ['mon', 'profile rbd', 'osd', pools, 'mgr', pools]],
  ];
  await runTool('ceph-authtool', ['--create-keyring', p.monKeyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  for (const [entity, caps] of entities) {
    const file = keyringPath(dir, entity);
    const capArgs: string[] = [];
    for (let i = 0; i < caps.length; i += 2) capArgs.push('--cap', caps[i] ?? '', caps[i + 1] ?? '');
    await runTool('ceph-authtool', ['--create-keyring', file, '--gen-key', '-n', entity, ...capArgs]);
    await runTool('ceph-authtool', [p.monKeyring, '--import-keyring', file]);
  }
  const keyring = await readFile(keyringPath(dir, `client.${CLIENT_USER}`), 'utf8');
  const key = /^\s*key\s*=\s*(\S+)\s*$/m.exec(keyring)?.[1];
  if (key === undefined) throw new CephClusterError('ceph-authtool wrote a keyring without a key');
  return key;
}

function startDaemon(dir: string, binary: 'ceph-mon' | 'ceph-mgr' | 'ceph-osd', id: string): Daemon {
  const p = clusterPaths(dir);
  // The daemons log to their files; stderr keeps what they say before the log is open.
  const stderr = openSync(path.join(p.log, `${binary}.stderr`), 'a');
  try {
    const child = spawn(binary, ['-f', '-c', p.conf, '-i', id], { stdio: ['ignore', 'ignore', stderr] });
    child.on('error', () => undefined);
    return { name: `${binary}.${id}`, child };
  } finally {
    closeSync(stderr);
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopDaemon(d: Daemon, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (exited(d.child)) return;
  const gone = new Promise<void>((resolve) => d.child.once('exit', () => resolve()));
  // a daemon a fault test stopped with SIGSTOP would hold a SIGTERM pending until the SIGKILL
  d.child.kill('SIGCONT');
  d.child.kill(signal);
  const timer = setTimeout(() => d.child.kill('SIGKILL'), STOP_GRACE_MS);
  await gone;
  clearTimeout(timer);
}

/**
 * Until the one OSD is up and every PG active+clean: with HEALTH_OK at bring-up; after an OSD
 * restart (`pgs active`) the health may still carry the restart's warning for a while.
 */
async function waitHealthy(admin: CephConnection, daemons: readonly Daemon[], timeoutMs: number, wanted: 'health ok' | 'pgs active' = 'health ok'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const dead = daemons.find((d) => exited(d.child));
    if (dead) throw new CephClusterError(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode})`);
    const status = await callCeph(admin, 'ceph', ['status'], HealthSchema).catch((err: unknown) => {
      last = errorMessage(err);
      return null;
    });
    if (status !== null) {
      const states = status.pgmap.pgs_by_state;
      const clean = status.pgmap.num_pgs > 0 && states.every((s) => s.state_name === 'active+clean');
      if ((wanted === 'pgs active' || status.health.status === 'HEALTH_OK') && clean && status.osdmap.num_up_osds === 1) return;
      last = `${status.health.status}, pgs ${states.map((s) => `${s.count} ${s.state_name}`).join(', ') || 'none'}, ${status.osdmap.num_up_osds} OSD up`;
    }
    if (Date.now() > deadline) throw new CephClusterError(`not healthy within ${timeoutMs / 1000}s: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function daemonRss(daemons: readonly Daemon[]): Promise<Record<string, number>> {
  const rss: Record<string, number> = {};
  for (const d of daemons) {
    const status = await readFile(`/proc/${d.child.pid}/status`, 'utf8').catch(() => '');
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kib !== undefined) rss[d.name] = Number(kib) * 1024;
  }
  return rss;
}

async function logTails(dir: string): Promise<string> {
  const p = clusterPaths(dir);
  const parts: string[] = [];
  for (const file of ['ceph-mon.stderr', 'ceph-osd.stderr', 'ceph-mgr.stderr', `mon.${MON_ID}.log`, `mgr.${MGR_ID}.log`, `osd.${OSD_ID}.log`]) {
    const text = await readFile(path.join(p.log, file), 'utf8').catch(() => '');
    if (text.trim() !== '') parts.push(`--- ${file}\n${text.trim().split('\n').slice(-15).join('\n')}`);
  }
  return parts.length > 0 ? `\n${parts.join('\n')}` : '';
}
