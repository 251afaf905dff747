// Which disk source reads a root disk, from the domain XML as Nova writes it, and how each source
// opens the stopped disk for a cold export: every driver stated, names checked, nothing probed.
import { CephNameError } from '../../../src/ceph';
import { parseDomainXml, rootDisk } from '../../../src/host/domain-xml';
import type { Domain, Libvirt } from '../../../src/libvirt';
import { describeRootDisk, diskSourceOf, rbdDiskOfXml } from '../../../src/host/disk-source/root-disk';
import { FileDiskSource } from '../../../src/host/disk-source/file-source';
import { RbdDiskSource, RBD_CHECKPOINT_REFUSAL } from '../../../src/host/disk-source/rbd-source';
import { BlockDiskSource } from '../../../src/host/disk-source/block-source';
import { UnsupportedSourceFormat } from '../../../src/host/disk-chain';
import { startReadOnlyExport } from '../../../src/host/nbd-export';

const settings = { confPath: '/etc/ceph/ceph.conf', user: 'nova' };
const UUID = '0f2b6c4e-2f4a-4d1e-9a51-6d2c1b7e9f00';

function domainWith(disk: string): string {
  return `<domain type='kvm'><name>i</name><devices>${disk}</devices></domain>`;
}

// nova/virt/libvirt/config.py LibvirtConfigGuestDisk for images_type=rbd
const NOVA_RBD_DISK = `<disk type="network" device="disk">
  <driver name="qemu" type="raw" cache="writeback" discard="unmap"/>
  <auth username="nova"><secret type="ceph" uuid="5b0c8c3a-51a4-4a5e-a1f4-0c6c2d1f0e11"/></auth>
  <source protocol="rbd" name="vms/${UUID}_disk">
    <host name="192.0.2.10" port="6789"/><host name="192.0.2.11" port="6789"/>
  </source>
  <target dev="vda" bus="virtio"/>
</disk>`;

describe('disk sources from the domain XML', () => {
  it("recognises Nova's RBD network disk: pool/image, auth user and secret", () => {
    const disk = rootDisk(parseDomainXml(domainWith(NOVA_RBD_DISK)));
    expect(disk.network).toEqual({ protocol: 'rbd', authUsername: 'nova', secretUuid: '5b0c8c3a-51a4-4a5e-a1f4-0c6c2d1f0e11' });
    const source = rbdDiskOfXml(disk, settings);
    expect(source?.ref).toEqual({ pool: 'vms', image: `${UUID}_disk` });
    expect(source?.checkpointRefusal).toBe(RBD_CHECKPOINT_REFUSAL);
  });

  it('keeps checkpoints on qcow2 files only: a raw file or RBD disk is read whole, with the reason', () => {
    const top = (format: 'qcow2' | 'raw') => ({ top: { path: '/var/lib/nova/instances/x/disk', format }, backing: [] });
    expect(new FileDiskSource(top('qcow2')).checkpointRefusal).toBeNull();
    expect(new FileDiskSource(top('raw')).checkpointRefusal).toMatch(/raw/);
    expect(new FileDiskSource(top('qcow2')).readOnlyImage()).toEqual({ diskPath: '/var/lib/nova/instances/x/disk', format: 'qcow2', backing: [] });
  });

  it('has no source for iSCSI, a qcow2 image inside RBD or another file format (and asks libvirt nothing)', async () => {
    const none = [
      `<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='iscsi' name='iqn.2010-10.org.openstack:volume-1/1'/><target dev='vda'/></disk>`,
      `<disk type='network' device='disk'><driver name='qemu' type='qcow2'/><source protocol='rbd' name='vms/x_disk'/><target dev='vda'/></disk>`,
      `<disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/var/lib/nova/instances/x/disk'/><target dev='vda'/></disk>`,
    ];
    const ctx = { client: {} as Libvirt, dom: {} as Domain, roots: { instancesPath: '/var/lib/nova/instances', imageCachePath: '/var/lib/nova/instances/_base' }, settings };
    for (const xml of none) await expect(describeRootDisk(rootDisk(parseDomainXml(domainWith(xml))), ctx)).resolves.toBeNull();
  });

  it.each(['vms/x_disk@snap', 'vms/../images/x', 'vms/-x', 'vms', 'vms/a/b', "vms/x',user=admin"])('refuses the RBD name %j instead of reading another image or pool', (name) => {
    const xml = domainWith(`<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name="${name}"/><target dev='vda'/></disk>`);
    expect(() => rbdDiskOfXml(rootDisk(parseDomainXml(xml)), settings)).toThrow(CephNameError);
  });
});

describe('cold exports', () => {
  it('opens an RBD image as raw over rbd with the conf and user stated, as JSON (no format probe, no option string to escape)', () => {
    const spec = new RbdDiskSource({ pool: 'vms', image: `${UUID}_disk` }, settings).readOnlyImage();
    expect(spec.blockdev.startsWith('json:')).toBe(true);
    expect(JSON.parse(spec.blockdev.slice(5))).toEqual({ driver: 'raw', file: { driver: 'rbd', pool: 'vms', image: `${UUID}_disk`, conf: '/etc/ceph/ceph.conf', user: 'nova' } });
    expect(JSON.parse(new RbdDiskSource({ pool: 'vms', image: 'x_disk' }, settings).readOnlyImage('snap-1').blockdev.slice(5)).file.snapshot).toBe('snap-1');
  });

  it("uses librados' default user when Nova's rbd_user is unset", () => {
    expect(new RbdDiskSource({ pool: 'vms', image: 'x_disk' }, { confPath: '/etc/ceph/ceph.conf' }).conn.user).toBe('admin');
  });

  it('finds the source a recorded description names, and refuses one no source reads', () => {
    expect(diskSourceOf({ diskPath: `vms/${UUID}_disk`, sourceFormat: 'rbd' }, settings)).toBeInstanceOf(RbdDiskSource);
    expect(diskSourceOf({ diskPath: '/var/lib/nova/instances/x/disk', sourceFormat: 'raw', backingChain: [] }, settings)).toBeInstanceOf(FileDiskSource);
    expect(diskSourceOf({ diskPath: `/dev/nova-vg/${UUID}_disk`, sourceFormat: 'lvm' }, settings)).toBeInstanceOf(BlockDiskSource);
    expect(() => diskSourceOf({ diskPath: '/var/lib/nova/instances/x/disk', sourceFormat: 'vmdk' }, settings)).toThrow(UnsupportedSourceFormat);
  });
});

describe('a blockdev export spec', () => {
  const loc = { socketPath: '/nonexistent/snap/nbd.sock', pidFile: '/nonexistent/snap/nbd.pid', exportName: 'vda' };
  it.each([
    ['a node without its driver (qemu-nbd would probe it)', 'json:{"driver":"raw","file":{"pool":"vms","image":"x"}}'],
    ['a top node without a driver', 'json:{"file":{"driver":"rbd","pool":"vms","image":"x"}}'],
    ['not JSON', 'json:{driver=raw'],
  ])('is refused before qemu-nbd runs: %s', async (_what, blockdev) => {
    await expect(startReadOnlyExport({ blockdev, ...loc })).rejects.toMatchObject({ code: 'invalid-spec', retryable: false });
  });
});
