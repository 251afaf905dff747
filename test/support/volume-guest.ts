// A real guest booting from a Cinder volume, as Nova boots one: a new 1 GiB volume, attached to the
// instance through Cinder's attachment flow, its RBD image `volumes/volume-<id>` the domain's disk
// (Cinder's cephx user, the volume id as the disk's <serial>), the guest's ext4 written into it.
// Shared by the tests that snapshot volume-backed instances through the engine and the compute API.
import { randomUUID } from 'node:crypto';
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import type { CephSecret } from '../../src/testing/ceph/libvirt-secret';
import { createRealGuest } from './guest/real-guest-run';
import type { FixtureOptions, InstanceFixture } from './instance-fixture';
import type { CinderAdmin } from './openstack/cinder-admin';
import type { RunningCinder } from './openstack/cinder';

export interface VolumeGuestDeps {
  cinder: RunningCinder;
  ceph: CephCluster;
  /** the libvirt secret holding Cinder's cephx key */
  secret: CephSecret;
  /** acts in the instance's project: makes and attaches the volume */
  admin: CinderAdmin;
}

export async function createVolumeGuest(deps: VolumeGuestDeps, options: Omit<FixtureOptions, 'uuid' | 'rbd'> = { linux: { workload: 'log', rateKiB: 512 } }): Promise<{ fixture: InstanceFixture; volumeId: string }> {
  const { cinder, ceph, secret, admin } = deps;
  const uuid = randomUUID();
  const volumeId = await admin.createVolume('root', 1);
  await admin.attach(volumeId, uuid);
  const rbd = { pool: cinder.pool, image: `volume-${volumeId}`, user: cinder.cephUser, secretUuid: secret.uuid, monHost: ceph.monHost, confPath: ceph.confPath, volumeId };
  const fixture = await createRealGuest({ ...options, uuid, rbd });
  return { fixture, volumeId };
}
