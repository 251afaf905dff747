// The block-device (LVM) disk source's pure parts: Nova's images_type=lvm naming, the
// encrypted-ephemeral rule, the confinement of a device path to the configured roots (on real
// files, symlinks and devices of this machine), and how a cold export opens the device.
import { mkdtemp, rm, symlink, writeFile, mkdir, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainState, type Domain, type Libvirt } from '../../../src/libvirt';
import { describeDomain, type DescribeConfig } from '../../../src/host/domain-inspection';
import { parseDomainXml, rootDisk } from '../../../src/host/domain-xml';
import { describeRootDisk } from '../../../src/host/disk-source/root-disk';
import {
  BLOCK_CHECKPOINT_REFUSAL,
  BlockDeviceRefused,
  BlockDiskSource,
  confineBlockDevice,
  isEncryptedEphemeral,
  novaLvmName,
} from '../../../src/host/disk-source/block-source';

const UUID = '0f2b6c4e-2f4a-4d1e-9a51-6d2c1b7e9f00';

describe("Nova's LVM naming", () => {
  it.each([
    [`/dev/nova-vg/${UUID}_disk`, { instanceUuid: UUID, diskName: 'disk', volumeGroup: 'nova-vg', encrypted: false }],
    [`/dev/stack-volumes-default/${UUID}_disk.local`, { instanceUuid: UUID, diskName: 'disk.local', volumeGroup: 'stack-volumes-default', encrypted: false }],
    [`/dev/vg0/${UUID}_disk__a`, { instanceUuid: UUID, diskName: 'disk_a', volumeGroup: 'vg0', encrypted: false }],
    [`/dev/mapper/${UUID}_disk-dmcrypt`, { instanceUuid: UUID, diskName: 'disk', volumeGroup: null, encrypted: true }],
    [`/dev/nova-vg/${UUID}_disk-dmcrypt`, { instanceUuid: UUID, diskName: 'disk', volumeGroup: 'nova-vg', encrypted: true }],
  ])('reads %s', (path, expected) => {
    expect(novaLvmName(path)).toEqual(expected);
  });

  it.each([
    [`/dev/mapper/nova--vg-${UUID}_disk`, "device-mapper's own spelling of an LV"],
    [`/dev/mapper/${UUID}_disk`, 'an unencrypted name under /dev/mapper, which Nova never opens'],
    [`/dev/nova-vg/${UUID}-disk`, 'no underscore after the uuid'],
    [`/dev/nova-vg/${UUID}_di_sk`, "a single underscore (Nova's escape doubles it)"],
    [`/dev/nova-vg/${UUID.toUpperCase()}_disk`, 'an upper-case uuid'],
    [`/dev/nova-vg/sub/${UUID}_disk`, 'a nested directory'],
    [`/srv/nova-vg/${UUID}_disk`, 'outside /dev'],
    ['/dev/sda', 'a host disk'],
    [`/dev/-vg/${UUID}_disk`, 'a volume group name LVM refuses'],
  ])('does not read %s (%s)', (path) => {
    expect(novaLvmName(path)).toBeNull();
  });
});

describe('the encrypted-ephemeral rule', () => {
  const block = (source: string) => ({ sourceType: 'block', source });
  it.each([
    ['host setting on, a file disk', true, { sourceType: 'file', source: '/var/lib/nova/instances/x/disk' }, true],
    ['host setting on, an RBD disk', true, { sourceType: 'network', source: `vms/${UUID}_disk` }, true],
    ['host setting on, a plain LV', true, block(`/dev/nova-vg/${UUID}_disk`), true],
    ["setting off, Nova's dm-crypt mapping", false, block(`/dev/mapper/${UUID}_disk-dmcrypt`), true],
    ['setting off, a dm-crypt name under another root', false, block(`/dev/nova-vg/${UUID}_disk-dmcrypt`), true],
    ['setting off, a plain LV', false, block(`/dev/nova-vg/${UUID}_disk`), false],
    ['setting off, a file named like a dm-crypt mapping', false, { sourceType: 'file', source: '/var/lib/nova/instances/x_disk-dmcrypt' }, false],
    ['setting off, a file disk', false, { sourceType: 'file', source: '/var/lib/nova/instances/x/disk' }, false],
  ])('%s → encrypted %s', (_what, hostSetting, disk, encrypted) => {
    expect(isEncryptedEphemeral(hostSetting, disk)).toBe(encrypted);
  });
});

/** A block device node of this machine (loop, virtio, …), for the one case that needs a real one. */
async function someBlockDevice(): Promise<string | null> {
  for (const name of (await readdir('/dev')).sort()) {
    const st = await stat(join('/dev', name)).catch(() => null);
    if (st?.isBlockDevice()) return join('/dev', name);
  }
  return null;
}

describe('confining a block device', () => {
  let dir: string;
  let vg: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'blockconf-'));
    vg = join(dir, 'vg');
    await mkdir(vg);
    await writeFile(join(vg, 'plain-file'), 'x');
    await symlink('/dev/null', join(vg, 'char-device'));
    await symlink(join(dir, 'elsewhere'), join(vg, 'dangling'));
    await mkdir(join(dir, 'other'));
    await symlink(join(dir, 'other'), join(vg, 'subdir'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses every block device while no root is configured, naming the settings and the volume group to set', async () => {
    await expect(confineBlockDevice(`/dev/nova-vg/${UUID}_disk`, [])).rejects.toThrow(/SNAP_BLOCK_DEVICE_PATHS.*SNAP_LVM_VOLUME_GROUP=nova-vg/);
  });

  it.each([
    ['a non-canonical path', () => `${vg}/../vg/x`, /non-canonical/],
    ['a device outside the roots', () => '/dev/null', /is not in/],
    ['a directory that resolves outside the roots', () => join(vg, 'subdir', 'x'), /is not in/],
    ['a regular file', () => join(vg, 'plain-file'), /outside \/dev/],
    ['a character device', () => join(vg, 'char-device'), /is not a block device/],
    ['a dangling name', () => join(vg, 'dangling'), /cannot be resolved/],
  ])('refuses %s', async (_what, path, message) => {
    await expect(confineBlockDevice(path(), [vg])).rejects.toThrow(message);
    await expect(confineBlockDevice(path(), [vg])).rejects.toBeInstanceOf(BlockDeviceRefused);
  });

  it('admits a block device named through a symlink in a root (as LVM names /dev/dm-N), and returns the device', async () => {
    const device = await someBlockDevice();
    if (device === null) throw new Error('this machine has no block device node under /dev');
    const name = join(vg, `${UUID}_disk`);
    await symlink(device, name);
    await expect(confineBlockDevice(name, [vg])).resolves.toBe(device);
    await expect(confineBlockDevice(name, [join(dir, 'other')])).rejects.toThrow(/is not in/);
  });

  it('refuses a block disk libvirt records as anything but raw, before looking at the device', async () => {
    const xml = `<domain type='kvm'><name>i</name><devices><disk type='block' device='disk'><driver name='qemu' type='qcow2'/><source dev='${vg}/${UUID}_disk'/><target dev='vda'/></disk></devices></domain>`;
    const ctx = { client: {} as Libvirt, dom: {} as Domain, roots: { instancesPath: '/var/lib/nova/instances', imageCachePath: '/var/lib/nova/instances/_base' }, settings: { confPath: '/etc/ceph/ceph.conf' }, blockDevices: { roots: [vg], allowLive: false } };
    await expect(describeRootDisk(rootDisk(parseDomainXml(xml)), ctx)).rejects.toThrow(/qcow2 by libvirt's word: only raw block devices are read/);
    const { blockDevices: _none, ...unset } = ctx;
    const raw = xml.replace("type='qcow2'", "type='raw'");
    await expect(describeRootDisk(rootDisk(parseDomainXml(raw)), unset)).rejects.toThrow(/no block device may be read until SNAP_BLOCK_DEVICE_PATHS/);
  });
});

describe('a block device source', () => {
  it('opens the device read-only as raw over host_device (both drivers stated, nothing probed) and keeps no checkpoints', () => {
    const source = new BlockDiskSource(`/dev/nova-vg/${UUID}_disk`);
    expect(JSON.parse(source.readOnlyImage().blockdev.slice('json:'.length))).toEqual({ driver: 'raw', file: { driver: 'host_device', filename: `/dev/nova-vg/${UUID}_disk` } });
    expect(source.checkpointRefusal).toBe(BLOCK_CHECKPOINT_REFUSAL);
  });

  it('refuses a path that could not be spelt safely into argv', () => {
    expect(() => new BlockDiskSource("/dev/vg/x',driver=file")).toThrow(/unsafe/);
  });
});

describe('describing a domain whose root disk is a block device', () => {
  let dir: string;
  let device: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'blockdesc-'));
    const found = await someBlockDevice();
    if (found === null) throw new Error('this machine has no block device node under /dev');
    device = found;
    for (const name of [`${UUID}_disk`, `${UUID}_disk-dmcrypt`]) await symlink(device, join(dir, name));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** libvirt as describeDomain asks it: a running domain on libvirt 9.0 / QEMU 7.2 with this root disk. */
  function libvirtWith(source: string): Libvirt {
    const xml = `<domain type='kvm'><name>i</name><devices><disk type='block' device='disk'><driver name='qemu' type='raw' cache='none' io='native'/><source dev='${source}'/><target dev='vda' bus='virtio'/></disk></devices></domain>`;
    const fake = {
      domainGetState: () => Promise.resolve({ state: DomainState.Running, reason: 1 }),
      domainGetXMLDesc: () => Promise.resolve(xml),
      connectGetLibVersion: () => Promise.resolve(9_000_000),
      connectGetVersion: () => Promise.resolve(7_002_000),
      domainGetBlockInfo: () => Promise.resolve({ capacity: 64 * 1024 ** 2, allocation: 0, physical: 64 * 1024 ** 2 }),
    };
    return fake as unknown as Libvirt;
  }

  const config = (over: Partial<DescribeConfig> = {}): DescribeConfig => ({
    instancesPath: '/var/lib/nova/instances',
    imageCachePath: '/var/lib/nova/instances/_base',
    disableLiveSnapshot: false,
    disableBackupApi: false,
    ephemeralEncryption: false,
    blockDevices: { roots: [dir], allowLive: false },
    ...over,
  });

  it.each<[string, string, boolean, Partial<DescribeConfig>, { liveCapable: boolean; backupCapable: boolean }]>([
    ['default: cold, as the seed keeps LVM', `${UUID}_disk`, false, {}, { liveCapable: false, backupCapable: true }],
    ['live allowed', `${UUID}_disk`, true, {}, { liveCapable: true, backupCapable: true }],
    ['live allowed, the host encrypts ephemeral storage', `${UUID}_disk`, true, { ephemeralEncryption: true }, { liveCapable: false, backupCapable: true }],
    ['live allowed, a dm-crypt device', `${UUID}_disk-dmcrypt`, true, {}, { liveCapable: false, backupCapable: true }],
    ['live allowed, no backup API', `${UUID}_disk`, true, { disableBackupApi: true }, { liveCapable: false, backupCapable: false }],
  ])('%s', async (_what, name, allowLive, over, expected) => {
    const described = await describeDomain(libvirtWith(join(dir, name)), {} as Domain, config({ blockDevices: { roots: [dir], allowLive }, ...over }));
    expect(described).toMatchObject({ sourceFormat: 'lvm', imageFormat: 'raw', diskPath: join(dir, name), virtualSize: 64 * 1024 ** 2, backingChain: [], ...expected });
  });

  it('refuses the disk before anything reads it when no root admits it', async () => {
    await expect(describeDomain(libvirtWith(join(dir, `${UUID}_disk`)), {} as Domain, config({ blockDevices: undefined }))).rejects.toBeInstanceOf(BlockDeviceRefused);
  });
});
