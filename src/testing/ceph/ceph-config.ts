// The ceph.conf of a throw-away single-node cluster (1 mon, 1 mgr, 1 OSD on BlueStore in a sparse
// file), loopback only, everything under one directory. The settings that matter for tests on a
// small machine are explained where they are set.
import { readdirSync } from 'node:fs';
import path from 'node:path';

export interface ClusterPlan {
  dir: string;
  fsid: string;
  /** the mon's msgr2 and legacy ports */
  monPorts: { v2: number; v1: number };
  /** the range the mgr and OSD bind in */
  portRange: { min: number; max: number };
  /** size of the OSD's sparse block file */
  osdBytes: number;
  /** optional mgr modules not to load */
  disabledMgrModules: readonly string[];
}

export const MON_ID = 'a';
export const MGR_ID = 'x';
export const OSD_ID = 0;

export function clusterPaths(dir: string) {
  return {
    conf: path.join(dir, 'ceph.conf'),
    keys: path.join(dir, 'keys'),
    monKeyring: path.join(dir, 'keys', 'mon.keyring'),
    monmap: path.join(dir, 'monmap'),
    monData: path.join(dir, 'mon'),
    mgrData: path.join(dir, 'mgr'),
    osdData: path.join(dir, 'osd'),
    // outside the OSD data dir: inside it, mkfs fails with "(40) Too many levels of symbolic links"
    osdBlock: path.join(dir, 'osd-block'),
    run: path.join(dir, 'run'),
    log: path.join(dir, 'log'),
  };
}

/** The keyring file of an entity ("client.admin", "osd.0"), as the conf's `keyring = …/$name.keyring` finds it. */
export function keyringPath(dir: string, entity: string): string {
  return path.join(clusterPaths(dir).keys, `${entity}.keyring`);
}

// Pacific refuses to run without these ("always on"); disabling them gives HEALTH_ERR.
const ALWAYS_ON_MGR_MODULES = new Set(['balancer', 'crash', 'devicehealth', 'orchestrator', 'pg_autoscaler', 'progress', 'rbd_support', 'status', 'telemetry', 'volumes']);
export const MGR_MODULE_DIR = '/usr/share/ceph/mgr';

/** The optional mgr modules installed here: not loading them halves the mgr's memory (about 300 → 155 MiB). */
export function optionalMgrModules(moduleDir = MGR_MODULE_DIR): string[] {
  try {
    return readdirSync(moduleDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && /^[a-z_]+$/.test(e.name) && !ALWAYS_ON_MGR_MODULES.has(e.name))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

export function renderCephConf(plan: ClusterPlan): string {
  const p = clusterPaths(plan.dir);
  const lines = [
    '[global]',
    `fsid = ${plan.fsid}`,
    `mon host = [v2:127.0.0.1:${plan.monPorts.v2},v1:127.0.0.1:${plan.monPorts.v1}]`,
    'public addr = 127.0.0.1',
    'ms bind ipv6 = false',
    // keeps the mgr's and the OSD's ports in a range we picked free (the default range reaches 7300)
    `ms bind port min = ${plan.portRange.min}`,
    `ms bind port max = ${plan.portRange.max}`,
    'auth cluster required = cephx',
    'auth service required = cephx',
    'auth client required = cephx',
    'auth allow insecure global id reclaim = false',
    `keyring = ${p.keys}/$name.keyring`,
    `run dir = ${p.run}`,
    `admin socket = ${p.run}/$name.asok`,
    `log file = ${p.log}/$name.log`,
    `pid file = ${p.run}/$name.pid`,
    'log to stderr = false',
    'err to stderr = true',
    // one OSD: pools of one copy, placed on the one host
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    'osd crush chooseleaf type = 0',
    'osd pool default pg autoscale mode = off',
    'mon allow pool delete = true',
    // a test machine's root filesystem is often fuller than a real mon's would be
    'mon data avail warn = 1',
    'mon data avail crit = 0',
    // bring-up from about 21 s to about 7 s: the mon proposes every 50 ms instead of every second
    'paxos propose interval = 0.05',
    'mon osd min down reporters = 1',
    // layering, exclusive-lock, object-map, fast-diff, deep-flatten: what Nova's images have, and
    // what `rbd diff --from-snap` needs to be fast
    'rbd default features = 61',
    '',
    '[mon]',
    `mon data = ${p.monData}`,
    '',
    '[mgr]',
    `mgr data = ${p.mgrData}`,
    'mgr initial modules = ',
    `mgr disabled modules = ${plan.disabledMgrModules.join(' ')}`,
    '',
    '[osd]',
    `osd data = ${p.osdData}`,
    'osd objectstore = bluestore',
    `bluestore block path = ${p.osdBlock}`,
    'bluestore block create = true',
    `bluestore block size = ${plan.osdBytes}`,
    'bluestore fsck on mount = false',
    'osd memory target = 1073741824',
    'osd heartbeat grace = 20',
    '',
  ];
  return lines.join('\n');
}
