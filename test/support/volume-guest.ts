// Real writing guests that boot from a Cinder volume on RBD (Nova's boot-from-volume): one Ceph, one
// Cinder and one libvirt secret for Cinder's cephx user per test file (or per fault-matrix run). Each
// guest gets a project of its own (noauth: hex ids), a new 1 GiB volume attached to it as Nova's
// attachment flow does, filled with the guest's ext4, its id as the disk's <serial>.
import { randomUUID } from 'node:crypto';
import { CinderClient, cinderForProject } from '../../src/cinder';
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { defineCephSecret, type CephSecret } from '../../src/testing/ceph/libvirt-secret';
import { useCephCluster } from './ceph';
import { useCinder } from './cinder';
import { createRealGuest } from './guest/real-guest-run';
import { DEFAULT_TEST_URI, type FixtureOptions, type InstanceFixture } from './instance-fixture';
import { CinderAdmin } from './openstack/cinder-admin';
import type { RunningCinder } from './openstack/cinder';

export interface VolumeGuest {
  fixture: InstanceFixture;
  volumeId: string;
  /** the guest's project in Cinder and in the instance store */
  projectId: string;
}

export interface VolumeGuests {
  ceph: CephCluster;
  cinder: RunningCinder;
  /** what the workers need to reach this Cinder (noauth: no token, the instance's project) */
  workerEnv: Record<string, string>;
  /** an admin of `projectId` (volumes, attachments, quotas) */
  admin(projectId: string): CinderAdmin;
  /** the snapshot path's own client in `projectId` */
  client(projectId: string): CinderClient;
  /** a new project's writing guest booting from its new root volume */
  newGuest(linux?: FixtureOptions['linux']): Promise<VolumeGuest>;
}

/** A project id Cinder's noauth takes (its routes want hex). */
export function newProjectId(): string {
  return randomUUID().replace(/-/g, '');
}

export function volumeGuestsOn(ceph: CephCluster, cinder: RunningCinder, secret: CephSecret): VolumeGuests {
  const admin = (projectId: string): CinderAdmin => new CinderAdmin({ baseUrl: cinder.baseUrl, projectId, token: () => Promise.resolve(cinder.noauthToken(projectId)), timeoutMs: 30_000 });
  return {
    ceph,
    cinder,
    workerEnv: { SNAP_VOLUME_URL: cinder.baseUrl },
    admin,
    client: (projectId) => cinderForProject(cinder.baseUrl, undefined)(projectId),
    async newGuest(linux = { workload: 'log', rateKiB: 512 }) {
      const projectId = newProjectId();
      const made = await createVolumeGuest({ cinder, ceph, secret, admin: admin(projectId) }, { prefix: 'snapvol', linux });
      return { ...made, projectId };
    },
  };
}

export interface VolumeGuestDeps {
  cinder: RunningCinder;
  ceph: CephCluster;
  /** the libvirt secret holding Cinder's cephx key */
  secret: CephSecret;
  /** acts in the instance's project: makes and attaches the volume */
  admin: CinderAdmin;
}

/** A new 1 GiB volume attached to a new instance through Cinder's attachment flow, the guest's ext4 in it. */
export async function createVolumeGuest(deps: VolumeGuestDeps, options: Omit<FixtureOptions, 'uuid' | 'rbd'> = { linux: { workload: 'log', rateKiB: 512 } }): Promise<{ fixture: InstanceFixture; volumeId: string }> {
  const { cinder, ceph, secret, admin } = deps;
  const uuid = randomUUID();
  const volumeId = await admin.createVolume('root', 1);
  await admin.attach(volumeId, uuid);
  const rbd = { pool: cinder.pool, image: `volume-${volumeId}`, user: cinder.cephUser, secretUuid: secret.uuid, monHost: ceph.monHost, confPath: ceph.confPath, volumeId };
  const fixture = await createRealGuest({ ...options, uuid, rbd });
  return { fixture, volumeId };
}

/** The libvirt secret holding Cinder's cephx key, at the test URI; remove() it before Cinder stops. */
export function defineCinderSecret(cinder: RunningCinder): Promise<CephSecret> {
  return defineCephSecret(DEFAULT_TEST_URI, cinder.cephUser, cinder.cephKey);
}

/** One Ceph, one Cinder and the secret for this file; the getter is valid inside tests and in later beforeAll hooks. */
export function useVolumeGuests(): () => VolumeGuests {
  const ceph = useCephCluster();
  const cinder = useCinder(ceph);
  let secret: CephSecret | undefined;
  beforeAll(async () => {
    secret = await defineCinderSecret(cinder());
  });
  afterAll(async () => {
    await secret?.remove();
  });
  return () => {
    if (secret === undefined) throw new Error('the libvirt secret for Cinder is not defined (beforeAll failed)');
    return volumeGuestsOn(ceph(), cinder(), secret);
  };
}
