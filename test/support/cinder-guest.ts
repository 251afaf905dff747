// Real writing guests that boot from Cinder volumes on RBD, as Nova lays out a boot-from-volume
// server: the root volume and any data volumes made by Cinder and attached to the instance in Cinder
// (so the snapshot path confirms them), the guest's ext4 written into each, the volume ids as the
// disks' serials. And what a Cinder snapshot holds: a new volume made from it, read back whole.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CinderClient, cinderForProject } from '../../src/cinder';
import { runTool } from '../../src/process/tool-process';
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { withGuestImage } from '../../src/testing/guest/guest-image-reader';
import type { RbdDiskSpec, Workload } from '../../src/testing/instance-layout';
import { rbdTarget } from '../../src/testing/instance-lifecycle';
import { createRealGuest } from './guest/real-guest-run';
import type { FixtureOptions, InstanceFixture } from './instance-fixture';
import { CinderAdmin } from './openstack/cinder-admin';
import type { RunningCinder } from './openstack/cinder';

export interface VolumeGuests {
  cinder: RunningCinder;
  cluster: CephCluster;
  /** the libvirt secret holding Cinder's cephx key */
  secretUuid: string;
  /** noauth: the project in Cinder's URLs must be hex */
  projectId: string;
}

export interface VolumeGuest {
  fixture: InstanceFixture;
  /** the root volume first, then the data volumes in target order (vdb, …) */
  volumeIds: string[];
}

export function cinderAdmin(env: VolumeGuests): CinderAdmin {
  return new CinderAdmin({ baseUrl: env.cinder.baseUrl, projectId: env.projectId, token: () => Promise.resolve(env.cinder.noauthToken(env.projectId)), timeoutMs: 30_000 });
}

/** The client the workers use (noauth's snapshot-service user), scoped to the guests' project. */
export function projectCinder(env: VolumeGuests): CinderClient {
  return cinderForProject(env.cinder.baseUrl, undefined)(env.projectId);
}

function volumeDisk(env: VolumeGuests, volumeId: string): RbdDiskSpec {
  return { pool: env.cinder.pool, image: `volume-${volumeId}`, user: env.cinder.cephUser, secretUuid: env.secretUuid, monHost: env.cluster.monHost, confPath: env.cluster.confPath, volumeId };
}

export interface VolumeGuestOptions {
  workload: Workload;
  rateKiB: number;
  /** more 1 GiB volumes attached (vdb, …) */
  dataVolumes?: number;
  /** the rest of the instance (memory, project, name prefix) */
  fixture?: Omit<FixtureOptions, 'uuid' | 'rbd' | 'dataVolumes' | 'linux'>;
}

/**
 * A writing guest booting from a new 1 GiB volume, with `dataVolumes` more attached; `admin` makes
 * and attaches them in the instance's project (noauth's admin of `env.projectId` by default).
 */
export async function createVolumeGuest(env: VolumeGuests, options: VolumeGuestOptions, admin: CinderAdmin = cinderAdmin(env)): Promise<VolumeGuest> {
  const uuid = randomUUID();
  const volumeIds: string[] = [];
  for (let i = 0; i <= (options.dataVolumes ?? 0); i++) {
    const volumeId = await admin.createVolume(i === 0 ? 'root' : `data-${i}`, 1);
    await admin.attach(volumeId, uuid);
    volumeIds.push(volumeId);
  }
  const [root, ...data] = volumeIds.map((id) => volumeDisk(env, id));
  const fixture = await createRealGuest({ ...options.fixture, uuid, rbd: root, dataVolumes: data, linux: { workload: options.workload, rateKiB: options.rateKiB } });
  return { fixture, volumeIds };
}

export interface RestoredVolume {
  volumeId: string;
  fsckClean: boolean;
  /** the file `name` of the volume's ext4 */
  file: Buffer;
}

/** What a Cinder snapshot holds: a volume Cinder makes from it, read over raw-over-rbd, its ext4 checked and `name` read. */
export async function restoreSnapshot(env: VolumeGuests, snapshotId: string, scratchDir: string, name: string): Promise<RestoredVolume> {
  const volumeId = await cinderAdmin(env).createVolume(`restored-${snapshotId.slice(0, 8)}`, 1, snapshotId);
  const file = join(scratchDir, `restored-${volumeId}.raw`);
  try {
    await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'raw', rbdTarget(volumeDisk(env, volumeId)), file]);
    return await withGuestImage(file, scratchDir, async (img) => ({ volumeId, fsckClean: (await img.fsck()).clean, file: await img.readFile(name) }), { format: 'raw' });
  } finally {
    await rm(file, { force: true });
  }
}
