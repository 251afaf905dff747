// Real writing guests whose root disk is in RBD, laid out as Nova's images_type=rbd: one single-node
// Ceph and one libvirt ceph secret per test file, a raw image `vms/<instance uuid>_disk` per guest.
import { randomUUID } from 'node:crypto';
import { RbdClient } from '../../src/ceph';
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { defineCephSecret, type CephSecret } from '../../src/testing/ceph/libvirt-secret';
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

/** Registers the cluster and the secret for this file; the getter is valid inside tests and in later beforeAll hooks. */
export function useRbdGuests(): () => RbdGuests {
  const cluster = useCephCluster();
  let secret: CephSecret | undefined;
  beforeAll(async () => {
    const c = cluster();
    secret = await defineCephSecret(DEFAULT_TEST_URI, c.client.user, c.clientKey);
  });
  afterAll(async () => {
    await secret?.remove();
  });
  return () => {
    const c = cluster();
    if (secret === undefined) throw new Error('the libvirt ceph secret is not defined (beforeAll failed)');
    const secretUuid = secret.uuid;
    return {
      cluster: c,
      hostEnv: { SNAP_RBD_CEPH_CONF: c.confPath, SNAP_RBD_USER: c.client.user },
      guestOptions() {
        const uuid = randomUUID();
        return { uuid, rbd: { pool: 'vms', image: `${uuid}_disk`, user: c.client.user, secretUuid, monHost: c.monHost, confPath: c.confPath } };
      },
    };
  };
}

/** The RBD snapshots on the guest's disk (what a finished snapshot of ours must not leave behind). */
export async function rbdSnapshotsOf(fixture: InstanceFixture): Promise<string[]> {
  const rbd = fixture.instance.rbd;
  if (rbd === null) throw new Error(`${fixture.instance.name} has no RBD disk`);
  return (await new RbdClient({ confPath: rbd.confPath, user: rbd.user }).snapList(rbd)).map((s) => s.name);
}
