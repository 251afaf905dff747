// SNAP_DEMO_STORAGE, `npm start`'s switch for where the demo instance keeps its disk: file unless
// set, rbd when asked, and anything else refused before the stack starts anything.
import { DemoStorageSchema } from '../../../src/stack/demo-storage';
import { rbdInstancesOn } from '../../../src/testing/ceph/rbd-instances';
import type { CephCluster } from '../../../src/testing/ceph/ceph-cluster';

describe('SNAP_DEMO_STORAGE', () => {
  it('defaults to file', () => {
    expect(DemoStorageSchema.parse(undefined)).toBe('file');
  });

  it.each(['file', 'rbd'] as const)('takes %s', (value) => {
    expect(DemoStorageSchema.parse(value)).toBe(value);
  });

  it.each(['RBD', 'lvm', 'ceph', '', ' rbd'])('refuses %j', (value) => {
    expect(DemoStorageSchema.safeParse(value).success).toBe(false);
  });
});

describe('the RBD demo disk', () => {
  const cluster = { confPath: '/etc/ceph/demo.conf', client: { user: 'snap', confPath: '/etc/ceph/demo.conf' }, monHost: { host: '127.0.0.1', port: 20001 } } as unknown as CephCluster;
  const instances = rbdInstancesOn(cluster, '6f4e2a1c-3b5d-4c7e-9f80-1a2b3c4d5e6f');

  it("is Nova's vms/<uuid>_disk, read with the cluster's client user and the libvirt secret", () => {
    const uuid = '0b7c2d8e-1f3a-4b5c-8d9e-0f1a2b3c4d5e';
    expect(instances.diskFor(uuid)).toEqual({ pool: 'vms', image: `${uuid}_disk`, user: 'snap', secretUuid: '6f4e2a1c-3b5d-4c7e-9f80-1a2b3c4d5e6f', monHost: { host: '127.0.0.1', port: 20001 }, confPath: '/etc/ceph/demo.conf' });
  });

  it("points the host worker at the cluster as Nova's settings name it", () => {
    expect(instances.hostEnv).toEqual({ SNAP_RBD_CEPH_CONF: '/etc/ceph/demo.conf', SNAP_RBD_USER: 'snap' });
  });
});
