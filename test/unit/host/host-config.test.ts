import { loadHostConfig } from '../../../src/host/host-config';
import { DomainState } from '../../../src/libvirt';
import { novaPowerState } from '../../../src/host/power-state';
import {
  POWER_STATE_CRASHED,
  POWER_STATE_NOSTATE,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  POWER_STATE_SUSPENDED,
} from '../../../src/contract';

describe('loadHostConfig', () => {
  it('defaults to the system daemon, a project-local snapshots dir and live snapshots on', () => {
    const config = loadHostConfig({ SNAP_HOST: 'compute-1' }, '/srv/snap');
    expect(config).toMatchObject({
      host: 'compute-1',
      libvirtUri: 'qemu:///system',
      snapshotsDir: '/srv/snap/.data/snapshots',
      disableLiveSnapshot: false,
      coldResumeBeforeStream: true,
      ephemeralEncryption: false,
      maxConcurrentSnapshots: 5,
      imageUrl: 'http://127.0.0.1:9292',
    });
  });

  it('confines backing files to the demo\'s instance dir and its _base by default, or to the configured instances path and image cache', () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }, '/srv/snap')).toMatchObject({ instancesPath: '/srv/snap/.data/demo', imageCachePath: '/srv/snap/.data/demo/_base' });
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_INSTANCES_PATH: '/var/lib/nova/instances' }, '/x')).toMatchObject({ instancesPath: '/var/lib/nova/instances', imageCachePath: '/var/lib/nova/instances/_base' });
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_INSTANCES_PATH: '/n/i', SNAP_IMAGE_CACHE_PATH: '/n/cache' }, '/x')).toMatchObject({ instancesPath: '/n/i', imageCachePath: '/n/cache' });
    expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_INSTANCES_PATH: '/n/i,x' })).toThrow(/SNAP_INSTANCES_PATH/);
    expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_IMAGE_CACHE_PATH: '' })).toThrow(/SNAP_IMAGE_CACHE_PATH/);
  });

  it('reads the Nova-equivalent switches', () => {
    const config = loadHostConfig({ SNAP_HOST: 'h', SNAP_DISABLE_LIVE_SNAPSHOT: 'true', SNAP_SNAPSHOT_IMAGE_FORMAT: 'raw', SNAP_SNAPSHOTS_DIR: '/var/snap' }, '/x');
    expect(config).toMatchObject({ disableLiveSnapshot: true, snapshotImageFormat: 'raw', snapshotsDir: '/var/snap' });
  });

  it('names the chunks of full snapshots (protocol 2) unless SNAP_IMAGE_NAMED_UPLOADS is false', () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }).namedUploads).toBe(true);
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_IMAGE_NAMED_UPLOADS: 'false' }).namedUploads).toBe(false);
    expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_IMAGE_NAMED_UPLOADS: 'sometimes' })).toThrow(/SNAP_IMAGE_NAMED_UPLOADS/);
  });

  it('keeps the seed\'s cold path (the guest saved until its disk is read) when told to', () => {
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_COLD_RESUME_BEFORE_STREAM: 'false' }).coldResumeBeforeStream).toBe(false);
  });

  it('reads the stream bandwidth limit in MiB/s, 0 (the default) meaning unlimited', () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }).streamBandwidthBytesPerSecond).toBe(0);
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_STREAM_BWLIMIT_MIBS: '40' }).streamBandwidthBytesPerSecond).toBe(40 * 1024 * 1024);
    for (const bad of ['-1', '1.5', 'fast', '100001']) expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_STREAM_BWLIMIT_MIBS: bad })).toThrow(/SNAP_STREAM_BWLIMIT_MIBS/);
  });

  it("reads Nova's RBD settings: the cluster's ceph.conf (default /etc/ceph/ceph.conf) and the cephx user", () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }).rbd).toEqual({ confPath: '/etc/ceph/ceph.conf' });
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_RBD_CEPH_CONF: '/etc/ceph/cluster2.conf', SNAP_RBD_USER: 'nova' }).rbd).toEqual({ confPath: '/etc/ceph/cluster2.conf', user: 'nova' });
    // a user that would smuggle an option or another entity type into the rbd command line, a relative or climbing conf path
    for (const user of ['client.nova', '--id=admin', 'nova admin', '']) expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_RBD_USER: user })).toThrow(/SNAP_RBD_USER/);
    for (const conf of ['ceph.conf', '/etc/ceph/../../home/ceph.conf', '/etc/ceph/ceph conf']) expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_RBD_CEPH_CONF: conf })).toThrow(/SNAP_RBD_CEPH_CONF/);
  });

  it("reads where block-device (LVM) disks may be: none by default, the listed directories and Nova's volume group; live only when allowed", () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }).blockDevices).toEqual({ roots: [], allowLive: false });
    const config = loadHostConfig({ SNAP_HOST: 'h', SNAP_BLOCK_DEVICE_PATHS: '/dev/mapper,/srv/vg', SNAP_LVM_VOLUME_GROUP: 'nova-vg', SNAP_BLOCK_DEVICE_LIVE_SNAPSHOT: 'true' });
    expect(config.blockDevices).toEqual({ roots: ['/dev/mapper', '/srv/vg', '/dev/nova-vg'], allowLive: true });
    for (const paths of ['dev/mapper', '/dev/../etc', '/dev/a b', '/dev', '/dev/mapper,/']) expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_BLOCK_DEVICE_PATHS: paths })).toThrow(/SNAP_BLOCK_DEVICE_PATHS/);
    for (const vg of ['-vg', '.', '..', 'a/b', '']) expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_LVM_VOLUME_GROUP: vg })).toThrow(/SNAP_LVM_VOLUME_GROUP/);
  });

  it('gives domains without an owner no default project unless SNAP_DEFAULT_PROJECT names one', () => {
    expect(loadHostConfig({ SNAP_HOST: 'h' }).defaultProject).toBeUndefined();
    expect(loadHostConfig({ SNAP_HOST: 'h', SNAP_DEFAULT_PROJECT: 'ops' }).defaultProject).toBe('ops');
    expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_DEFAULT_PROJECT: 'a b' })).toThrow(/SNAP_DEFAULT_PROJECT/);
  });

  it('rejects a host name that cannot be part of a task queue, and bad numbers', () => {
    expect(() => loadHostConfig({ SNAP_HOST: 'bad host/../x' })).toThrow(/SNAP_HOST|host name/);
    expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_MAX_CONCURRENT_UPLOADS: '0' })).toThrow();
    expect(() => loadHostConfig({ SNAP_HOST: 'h', SNAP_SNAPSHOT_IMAGE_FORMAT: 'vmdk' })).toThrow();
  });
});

describe('novaPowerState', () => {
  it("maps libvirt's domain states as Nova's LIBVIRT_POWER_STATE does", () => {
    expect(novaPowerState(DomainState.Running)).toBe(POWER_STATE_RUNNING);
    expect(novaPowerState(DomainState.Blocked)).toBe(POWER_STATE_RUNNING);
    expect(novaPowerState(DomainState.Paused)).toBe(POWER_STATE_PAUSED);
    expect(novaPowerState(DomainState.Shutdown)).toBe(POWER_STATE_SHUTDOWN);
    expect(novaPowerState(DomainState.Shutoff)).toBe(POWER_STATE_SHUTDOWN);
    expect(novaPowerState(DomainState.Crashed)).toBe(POWER_STATE_CRASHED);
    expect(novaPowerState(DomainState.PMSuspended)).toBe(POWER_STATE_SUSPENDED);
    expect(novaPowerState(DomainState.NoState)).toBe(POWER_STATE_NOSTATE);
  });
});
