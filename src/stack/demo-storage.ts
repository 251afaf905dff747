// SNAP_DEMO_STORAGE: where `npm start`'s demo instance keeps its root disk. `file` (the default) is
// Nova's qcow2 base + overlay under the data dir; `rbd` is Nova's images_type=rbd on a single-node
// Ceph the stack brings up for the run (src/testing/ceph), stopped with the stack, the host worker
// pointed at it as Nova's settings say (SNAP_RBD_CEPH_CONF, SNAP_RBD_USER).
import { z } from 'zod';
import { errorMessage } from '../contract';
import { startCephCluster } from '../testing/ceph/ceph-cluster';
import { defineClusterSecret, rbdInstancesOn, type RbdInstances } from '../testing/ceph/rbd-instances';

export const DemoStorageSchema = z.enum(['file', 'rbd']).default('file');
export type DemoStorage = z.infer<typeof DemoStorageSchema>;

export interface DemoCeph extends RbdInstances {
  /** the libvirt secret, then every daemon and the cluster's directory */
  stop(): Promise<void>;
}

/** A single-node Ceph and the libvirt secret of its client user at `uri`, for the demo's RBD disk. */
export async function startDemoCeph(uri: string): Promise<DemoCeph> {
  const cluster = await startCephCluster();
  try {
    const secret = await defineClusterSecret(uri, cluster);
    return {
      ...rbdInstancesOn(cluster, secret.uuid),
      async stop() {
        await secret.remove();
        await cluster.stop();
      },
    };
  } catch (err) {
    await cluster.stop();
    throw new Error(`the demo's Ceph: ${errorMessage(err)}`, { cause: err });
  }
}
