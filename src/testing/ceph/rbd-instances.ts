// Instances whose root disk is in a throw-away cluster, laid out as Nova's images_type=rbd: a raw
// image `vms/<instance uuid>_disk` that libvirt opens as a network disk with the cephx key of a
// libvirt secret, and the host worker told where the cluster is (Nova's images_rbd_ceph_conf,
// rbd_user). Shared by the tests, the benches and the `npm start` demo.
import type { RbdDiskSpec } from '../instance-layout';
import type { CephCluster } from './ceph-cluster';
import { defineCephSecret, type CephSecret } from './libvirt-secret';

export const INSTANCE_POOL = 'vms';

export interface RbdInstances {
  cluster: CephCluster;
  /** the host worker's settings for this cluster */
  hostEnv: Record<string, string>;
  /** the root disk of the instance `uuid` */
  diskFor(uuid: string): RbdDiskSpec;
}

export function rbdInstancesOn(cluster: CephCluster, secretUuid: string): RbdInstances {
  return {
    cluster,
    hostEnv: { SNAP_RBD_CEPH_CONF: cluster.confPath, SNAP_RBD_USER: cluster.client.user },
    diskFor: (uuid) => ({ pool: INSTANCE_POOL, image: `${uuid}_disk`, user: cluster.client.user, secretUuid, monHost: cluster.monHost, confPath: cluster.confPath }),
  };
}

/** The libvirt secret (at `uri`) holding the cluster's client key; remove() it before the cluster stops. */
export function defineClusterSecret(uri: string, cluster: CephCluster): Promise<CephSecret> {
  return defineCephSecret(uri, cluster.client.user, cluster.clientKey);
}
