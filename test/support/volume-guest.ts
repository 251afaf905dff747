// Real writing guests that boot from a Cinder volume on RBD (Nova's boot-from-volume): one Ceph, one
// Cinder and one libvirt secret for Cinder's cephx user per test file (or per fault-matrix run). Each
// guest gets a project of its own (noauth: hex ids), a new 1 GiB volume attached to it as Nova's
// attachment flow does, filled with the guest's ext4, its id as the disk's <serial>.
import { randomUUID } from 'node:crypto';
import type { CinderClient } from '../../src/cinder';
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { defineCephSecret, type CephSecret } from '../../src/testing/ceph/libvirt-secret';
import { useCephCluster } from './ceph';
import { useCinder } from './cinder';
import { cinderAdmin, createVolumeGuest, projectCinder, type VolumeGuests as ProjectVolumeGuests } from './cinder-guest';
import { DEFAULT_TEST_URI, type InstanceFixture } from './instance-fixture';
import type { CinderAdmin } from './openstack/cinder-admin';
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
  newGuest(): Promise<VolumeGuest>;
}

/** A project id Cinder's noauth takes (its routes want hex). */
export function newProjectId(): string {
  return randomUUID().replace(/-/g, '');
}

export function volumeGuestsOn(ceph: CephCluster, cinder: RunningCinder, secret: CephSecret): VolumeGuests {
  const inProject = (projectId: string): ProjectVolumeGuests => ({ cinder, cluster: ceph, secretUuid: secret.uuid, projectId });
  return {
    ceph,
    cinder,
    workerEnv: { SNAP_VOLUME_URL: cinder.baseUrl },
    admin: (projectId) => cinderAdmin(inProject(projectId)),
    client: (projectId) => projectCinder(inProject(projectId)),
    async newGuest() {
      const projectId = newProjectId();
      const { fixture, volumeIds } = await createVolumeGuest(inProject(projectId), { workload: 'log', rateKiB: 512, fixture: { prefix: 'snapvol' } });
      return { fixture, volumeId: volumeIds[0] ?? '', projectId };
    },
  };
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
