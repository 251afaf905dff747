// Validation of everything that reaches a path, a command line or domain XML.
import { buildDiskXml, buildDomainXml, planInstance, validateInstanceName } from '../../../src/testing/instance-layout';
import { assertSafePath } from '../../../src/fs/safe-path';
import type { GuestArtifacts } from '../../../src/testing/guest/guest-builder';
import { novaOwnership } from '../../../src/host/domain-inventory';

describe('instance layout validation', () => {
  it('accepts plain names and rejects anything that could escape a path or XML', () => {
    expect(validateInstanceName('snaptest-0a1b2c3d')).toBe('snaptest-0a1b2c3d');
    for (const bad of ['', '-x', '../etc', 'a/b', "a'b", 'a b', 'a<b', 'x'.repeat(64), 'a\nb']) {
      expect(() => validateInstanceName(bad)).toThrow(/invalid instance name/);
    }
  });

  it('accepts only absolute canonical paths of safe characters', () => {
    expect(assertSafePath('/tmp/snaptest-x/disk.qcow2')).toBe('/tmp/snaptest-x/disk.qcow2');
    for (const bad of ['relative/x', '/tmp/../etc/passwd', '/tmp//x', "/tmp/a'b", '/tmp/a b', '/tmp/$(id)', '/tmp/x;rm', '/tmp/-x/./y']) {
      expect(() => assertSafePath(bad)).toThrow(/unsafe or non-canonical path/);
    }
  });

  it('plans Nova-style files and a q35 domain with hot-plug ports and virtio vda', () => {
    const layout = planInstance({ name: 'snaptest-abc', dir: '/tmp/snap', domainType: 'qemu', memoryMiB: 64 });
    expect(layout.basePath).toBe('/tmp/snap/snaptest-abc-base.qcow2');
    expect(layout.overlayPath).toBe('/tmp/snap/snaptest-abc-disk.qcow2');
    const xml = buildDomainXml(layout);
    expect(xml).toMatch(/^<domain type='qemu'/);
    expect(xml).toContain("<memory unit='MiB'>64</memory>");
    expect(xml).toContain("machine='q35'");
    expect(xml.match(/model='pcie-root-port'/g)?.length).toBeGreaterThanOrEqual(4);
    expect(xml).toContain("<source file='/tmp/snap/snaptest-abc-disk.qcow2'/>");
    expect(xml).toContain("<target dev='vda' bus='virtio'/>");
    // the owner, as Nova writes it: the host's report gives the instance this project
    expect(novaOwnership(xml).projectId).toBe('demo');
    expect(novaOwnership(buildDomainXml(planInstance({ name: 'snaptest-abc', dir: '/srv/snap', domainType: 'qemu', projectId: 'p-7' }))).projectId).toBe('p-7');
    expect(() => planInstance({ name: 'x', dir: '/srv', projectId: "p'><x" })).toThrow(/invalid project id/);
    expect(() => planInstance({ name: 'x', dir: '/tmp', memoryMiB: 512 })).toThrow(/64\.\.128/);
    expect(() => buildDiskXml('/tmp/x.qcow2', 'sda')).toThrow(/invalid virtio target/);
  });
});

const artifacts: GuestArtifacts = {
  dir: '/tmp/guest',
  kernelPath: '/tmp/guest/vmlinuz',
  initrdPath: '/tmp/guest/initrd.img',
  manifest: { key: '0123456789abcdef', kernelRelease: '6.1.0-cloud-amd64', packages: [], initrdSha256: '0'.repeat(64), builtAt: '2026-12-02T00:00:00Z' },
};

describe('Linux guest layout', () => {

  it('boots the kernel directly with the workload on the command line, a console file and the agent channel', () => {
    const layout = planInstance({ name: 'snaptest-linux', dir: '/tmp/snap', domainType: 'qemu', linux: { artifacts, workload: 'blocks', agent: false, rateKiB: 256 } });
    expect(layout.memoryMiB).toBe(160);
    expect(layout.diskSizeBytes).toBe(64 * 1024 * 1024);
    expect(layout.consolePath).toBe('/tmp/snap/snaptest-linux-console.log');
    const xml = buildDomainXml(layout);
    expect(xml).toContain('<kernel>/tmp/guest/vmlinuz</kernel>');
    expect(xml).toContain('<initrd>/tmp/guest/initrd.img</initrd>');
    expect(xml).toMatch(/<cmdline>console=ttyS0 .*snap\.workload=blocks snap\.agent=off snap\.rate=256<\/cmdline>/);
    expect(xml).toContain("<source path='/tmp/snap/snaptest-linux-console.log' append='on'/>");
    expect(xml).toContain("<target type='virtio' name='org.qemu.guest_agent.0'/>");
    expect(xml).not.toContain("<boot dev='hd'/>");
  });

  it('defaults to TCG for Linux guests unless told the KVM probe passed, and refuses bad workload settings', () => {
    expect(planInstance({ name: 'snaptest-l', dir: '/tmp/snap', linux: { artifacts } }).domainType).toBe('qemu');
    expect(planInstance({ name: 'snaptest-l', dir: '/tmp/snap', domainType: 'kvm', linux: { artifacts } }).domainType).toBe('kvm');
    expect(() => planInstance({ name: 'snaptest-l', dir: '/tmp/snap', linux: { artifacts, rateKiB: 0 } })).toThrow(/rateKiB/);
    expect(() => planInstance({ name: 'snaptest-l', dir: '/tmp/snap', linux: { artifacts, workload: 'fork-bomb' as 'log' } })).toThrow(/unknown workload/);
    expect(() => planInstance({ name: 'snaptest-l', dir: '/tmp/snap', linux: { artifacts: { ...artifacts, kernelPath: '/tmp/a b' } } })).toThrow(/unsafe/);
    expect(() => planInstance({ name: 'snaptest-l', dir: '/tmp/snap', linux: { artifacts }, memoryMiB: 64 })).toThrow(/96\.\.512/);
  });

  it("lays an RBD root disk out as Nova does (network disk, auth before source, raw) and refuses names that could reach another image", () => {
    const uuid = '6b0f5a7e-1c2d-4e3f-8a9b-0c1d2e3f4a5b';
    const rbd = { pool: 'vms', image: `${uuid}_disk`, user: 'snap', secretUuid: '5b0c8c3a-51a4-4a5e-a1f4-0c6c2d1f0e11', monHost: { host: '127.0.0.1', port: 20001 }, confPath: '/etc/ceph/ceph.conf' };
    const layout = planInstance({ name: 'snaptest-r', dir: '/srv/snap', linux: { artifacts }, rbd, uuid });
    const xml = buildDomainXml(layout);
    expect(xml).toContain(`<uuid>${uuid}</uuid>`);
    expect(xml).toMatch(/<disk type='network' device='disk'>\s*<driver name='qemu' type='raw'[^>]*\/>\s*<auth username='snap'>\s*<secret type='ceph' uuid='5b0c8c3a-51a4-4a5e-a1f4-0c6c2d1f0e11'\/>\s*<\/auth>\s*<source protocol='rbd' name='vms\/6b0f5a7e-1c2d-4e3f-8a9b-0c1d2e3f4a5b_disk'>\s*<host name='127.0.0.1' port='20001'\/>/);
    expect(() => planInstance({ name: 'snaptest-r', dir: '/srv/snap', linux: { artifacts }, rbd: { ...rbd, image: "x' name='other" } })).toThrow(/image name/);
    expect(() => planInstance({ name: 'snaptest-r', dir: '/srv/snap', linux: { artifacts }, rbd: { ...rbd, secretUuid: "x'/><evil" } })).toThrow(/secret uuid/);
    expect(() => planInstance({ name: 'snaptest-r', dir: '/srv/snap', rbd })).toThrow(/Linux/);
    expect(xml).not.toContain('<serial>');
    // boot from a Cinder volume: the volume id is the disk's serial, as Nova writes it
    const volumeId = '0d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d';
    const volume = { ...rbd, pool: 'volumes', image: `volume-${volumeId}`, volumeId };
    expect(buildDomainXml(planInstance({ name: 'snaptest-v', dir: '/srv/snap', linux: { artifacts }, rbd: volume, uuid }))).toMatch(/<target dev='vda' bus='virtio'\/>\s*<serial>0d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d<\/serial>\s*<\/disk>/);
    expect(() => planInstance({ name: 'snaptest-v', dir: '/srv/snap', linux: { artifacts }, rbd: { ...volume, volumeId: '</serial><evil' } })).toThrow(/volume id/);
  });

  it('attaches Cinder data volumes after the root as vdb, vdc, each with its volume id as serial, and refuses one without an id', () => {
    const rbd = { pool: 'volumes', user: 'cinder', secretUuid: '5b0c8c3a-51a4-4a5e-a1f4-0c6c2d1f0e11', monHost: { host: '127.0.0.1', port: 20001 }, confPath: '/etc/ceph/ceph.conf' };
    const ids = ['0d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d', '1e4d5c6b-7f80-4b9c-8d1e-2f3a4b5c6d7e', '2f5e6d7c-8091-4cad-9e2f-3a4b5c6d7e8f'];
    const [root, ...data] = ids.map((volumeId) => ({ ...rbd, image: `volume-${volumeId}`, volumeId }));
    const xml = buildDomainXml(planInstance({ name: 'snaptest-v', dir: '/srv/snap', linux: { artifacts }, rbd: root, dataVolumes: data }));
    const disks = [...xml.matchAll(/<source protocol='rbd' name='volumes\/volume-([0-9a-f-]+)'>[\s\S]*?<target dev='(vd[a-z])' bus='virtio'\/>\s*<serial>([0-9a-f-]+)<\/serial>/g)].map((m) => [m[1], m[2], m[3]]);
    expect(disks).toEqual([
      [ids[0], 'vda', ids[0]],
      [ids[1], 'vdb', ids[1]],
      [ids[2], 'vdc', ids[2]],
    ]);
    const noId = { ...rbd, image: 'volume-x' };
    expect(() => planInstance({ name: 'snaptest-v', dir: '/srv/snap', linux: { artifacts }, rbd: root, dataVolumes: [noId] })).toThrow(/volume id/);
    expect(() => planInstance({ name: 'snaptest-v', dir: '/srv/snap', dataVolumes: data })).toThrow(/Linux/);
    expect(() => planInstance({ name: 'snaptest-v', dir: '/srv/snap', linux: { artifacts }, rbd: root, dataVolumes: Array.from({ length: 6 }, () => data[0]!) })).toThrow(/at most 5/);
  });
});

describe('raw disk layout', () => {
  it("lays a block-device root disk out as Nova's lvm does (raw block disk named <vg>/<uuid>_disk over the raw file) and refuses it for OS-less guests or beside RBD", () => {
    const uuid = '6b0f5a7e-1c2d-4e3f-8a9b-0c1d2e3f4a5b';
    const block = { dir: '/srv/nova-vg', name: `${uuid}_disk` };
    const layout = planInstance({ name: 'snaptest-b', dir: '/srv/snap', linux: { artifacts }, block, uuid });
    expect(layout).toMatchObject({ block: { devicePath: `/srv/nova-vg/${uuid}_disk` }, overlayPath: '/srv/snap/snaptest-b-disk.raw', diskFormat: 'raw' });
    expect(buildDomainXml(layout)).toMatch(new RegExp(`<disk type='block' device='disk'>\\s*<driver name='qemu' type='raw'[^>]*/>\\s*<source dev='/srv/nova-vg/${uuid}_disk'/>`));
    expect(() => planInstance({ name: 'snaptest-b', dir: '/srv/snap', block })).toThrow(/Linux/);
    expect(() => planInstance({ name: 'snaptest-b', dir: '/srv/snap', linux: { artifacts }, block: { ...block, name: "x'/><evil" } })).toThrow(/invalid instance name/);
    expect(() => planInstance({ name: 'snaptest-b', dir: '/srv/snap', linux: { artifacts }, block: { ...block, dir: '/srv/../dev' } })).toThrow(/non-canonical/);
  });

  it('lays an OS-less guest on one raw disk, attached as raw; Linux guests keep base + overlay', () => {
    const layout = planInstance({ name: 'snaptest-raw', dir: '/tmp/snap', domainType: 'qemu', diskFormat: 'raw' });
    expect(layout).toMatchObject({ diskFormat: 'raw', overlayPath: '/tmp/snap/snaptest-raw-disk.raw' });
    expect(buildDomainXml(layout)).toContain("<driver name='qemu' type='raw' cache='none'/>");
    expect(planInstance({ name: 'snaptest-q', dir: '/tmp/snap', domainType: 'qemu' }).diskFormat).toBe('qcow2');
    expect(() => planInstance({ name: 'snaptest-l', dir: '/tmp/snap', diskFormat: 'raw', linux: { artifacts } })).toThrow(/not laid out for Linux guests/);
  });
});
