// Real writing guests whose root disk is in RBD, laid out as Nova's images_type=rbd: one single-node
// Ceph and one libvirt ceph secret per test file (or per fault-matrix run), a raw image
// `vms/<instance uuid>_disk` per guest, and what a snapshot of ours may leave in the cluster.
import { randomUUID } from 'node:crypto';
import { RbdClient } from '../../src/ceph';
import { CLUSTER_POOLS, type CephCluster } from '../../src/testing/ceph/ceph-cluster';
import type { CephSecret } from '../../src/testing/ceph/libvirt-secret';
import { defineClusterSecret as defineSecretAt, rbdInstancesOn } from '../../src/testing/ceph/rbd-instances';
import type { SnapshotChainStore } from '../../src/store';
import type { InstanceFixture, FixtureOptions } from './instance-fixture';
import { DEFAULT_TEST_URI } from './instance-fixture';
import { useCephCluster } from './ceph';

export interface RbdGuests {
  cluster: CephCluster;
  /** the host worker's settings for this cluster (Nova's images_rbd_ceph_conf, rbd_user) */
  hostEnv: Record<string, string>;
  /** fixture options that put a new guest's root disk into RBD */
  guestOptions(): Pick<FixtureOptions, 'uuid' | 'rbd'>;
}

/** Guests on `cluster` whose QEMU reads the disk with the key in the libvirt secret `secretUuid`. */
export function rbdGuestsOn(cluster: CephCluster, secretUuid: string): RbdGuests {
  const instances = rbdInstancesOn(cluster, secretUuid);
  return {
    cluster,
    hostEnv: instances.hostEnv,
    guestOptions() {
      const uuid = randomUUID();
      return { uuid, rbd: instances.diskFor(uuid) };
    },
  };
}

/** The libvirt secret for the cluster's client user at the test URI; remove() it before the cluster stops. */
export function defineClusterSecret(cluster: CephCluster): Promise<CephSecret> {
  return defineSecretAt(DEFAULT_TEST_URI, cluster);
}

/** Registers the cluster and the secret for this file; the getter is valid inside tests and in later beforeAll hooks. */
export function useRbdGuests(): () => RbdGuests {
  const cluster = useCephCluster();
  let secret: CephSecret | undefined;
  beforeAll(async () => {
    secret = await defineClusterSecret(cluster());
  });
  afterAll(async () => {
    await secret?.remove();
  });
  return () => {
    if (secret === undefined) throw new Error('the libvirt ceph secret is not defined (beforeAll failed)');
    return rbdGuestsOn(cluster(), secret.uuid);
  };
}

/** The RBD snapshots on the guest's disk, ours and any other. */
export async function rbdSnapshotsOf(fixture: InstanceFixture): Promise<string[]> {
  const rbd = fixture.instance.rbd;
  if (rbd === null) throw new Error(`${fixture.instance.name} has no RBD disk`);
  return (await new RbdClient({ confPath: rbd.confPath, user: rbd.user }).snapList(rbd)).map((s) => s.name);
}

/** What else may be in the cluster beside the rule's own: not ours, or no longer ours. */
export interface RbdKept {
  /** snapshots on the disk that are not ours (an operator's, Nova's), made by the test */
  foreignSnapshots?: readonly string[];
  /** images in the pools that are Glance's (a direct snapshot handed them over), or were there before */
  images?: readonly string[];
}

/**
 * What a run left in the cluster against the one rule for an RBD disk, as readable violations. Of
 * ours exactly one RBD snapshot may stay: the one the instance's newest chain row records as its
 * checkpoint (a live run on a composing image service with change tracking on; the next
 * incremental reads changes from it), and it must be there. Nothing else: no other snapshot on the
 * disk (a failed run's, a direct snapshot's `direct-*`), no image in the pools but the guest's disk
 * (a clone or a copy of ours).
 */
export async function rbdLeftovers(cluster: CephCluster, fixture: InstanceFixture, chain: SnapshotChainStore, kept: RbdKept = {}): Promise<string[]> {
  const disk = fixture.instance.rbd;
  if (disk === null) throw new Error(`${fixture.instance.name} has no RBD disk`);
  const [newest] = await chain.list(fixture.instance.domain.uuid);
  const recorded = newest?.checkpoint ?? null;
  const snapshots = await rbdSnapshotsOf(fixture);
  const left: string[] = [];
  if (recorded !== null && !snapshots.includes(recorded)) left.push(`the chain's RBD snapshot ${disk.pool}/${disk.image}@${recorded} is gone`);
  for (const snap of snapshots) {
    if (snap !== recorded && !(kept.foreignSnapshots ?? []).includes(snap)) left.push(`snapshot ${disk.pool}/${disk.image}@${snap}`);
  }
  const rbd = new RbdClient(cluster.admin);
  for (const pool of CLUSTER_POOLS) {
    for (const image of await rbd.list(pool)) {
      if ((pool !== disk.pool || image !== disk.image) && !(kept.images ?? []).includes(image)) left.push(`image ${pool}/${image}`);
    }
  }
  return left;
}
