import { domainFlavor, inventoryDomain, novaOwnership, scanDomains } from '../../../src/host/domain-inventory';
import { DomainState, LibvirtError, VIR_ERR_NO_DOMAIN, type Libvirt } from '../../../src/libvirt';

const novaDomain = `<domain type='kvm'><name>instance-00000001</name><vcpu placement='static'>4</vcpu><memory unit='KiB'>8388608</memory><metadata>
  <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
    <nova:flavor name="m1.small"><nova:memory>2048</nova:memory><nova:disk>20</nova:disk><nova:swap>512</nova:swap><nova:ephemeral>0</nova:ephemeral><nova:vcpus>1</nova:vcpus></nova:flavor>
    <nova:owner><nova:user uuid="u1">admin</nova:user><nova:project uuid="9f1c2b">demo</nova:project></nova:owner>
    <nova:root type="image" uuid="b8e5d3a0-1111-4222-8333-444455556666"/>
  </nova:instance></metadata></domain>`;

describe('novaOwnership', () => {
  it("reads Nova's owner project, user and root image from the domain metadata", () => {
    expect(novaOwnership(novaDomain)).toEqual({ projectId: '9f1c2b', userId: 'u1', imageRef: 'b8e5d3a0-1111-4222-8333-444455556666' });
  });

  it('gives nulls for a domain Nova did not define, and ignores a volume root', () => {
    expect(novaOwnership(`<domain type='kvm'><name>plain</name></domain>`)).toEqual({ projectId: null, userId: null, imageRef: null });
    const volumeRoot = `<domain><metadata><nova:instance xmlns:nova="x"><nova:root type="volume" uuid="v1"/></nova:instance></metadata></domain>`;
    expect(novaOwnership(volumeRoot).imageRef).toBeNull();
  });
});

describe('inventoryDomain', () => {
  const dom = { uuid: 'f3a1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8', name: 'plain' };
  const plain = `<domain type='kvm'><name>plain</name><vcpu>1</vcpu><memory unit='MiB'>128</memory></domain>`;

  it('gives a domain without <nova:owner> no project: it is no tenant\'s, only cloud admins see it', () => {
    expect(inventoryDomain(dom, DomainState.Running, plain, 'h1').projectId).toBeNull();
  });

  it("gives it the host's default project only when the operator sets one, and never overrides Nova's owner", () => {
    expect(inventoryDomain(dom, DomainState.Running, plain, 'h1', 'ops').projectId).toBe('ops');
    expect(inventoryDomain(dom, DomainState.Running, novaDomain, 'h1', 'ops')).toMatchObject({ projectId: '9f1c2b', userId: 'u1', host: 'h1', name: 'plain' });
  });
});

describe('volume disks', () => {
  const dom = { uuid: 'f3a1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8', name: 'bfv' };
  const rootVolume = '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19';
  const dataVolume = '5e2f1a3b-8c7d-4e6f-a5b4-c3d2e1f0a9b8';
  // as Nova's libvirt driver writes an RBD volume: network disk volumes/volume-<id>, <serial> = the volume id
  const rbdVolume = (id: string, dev: string): string =>
    `<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><source protocol='rbd' name='volumes/volume-${id}'><host name='127.0.0.1' port='6789'/></source><auth username='cinder'><secret type='ceph' uuid='5d1e3f2a-1b2c-4d3e-8f4a-5b6c7d8e9f0a'/></auth><target dev='${dev}' bus='virtio'/><serial>${id}</serial></disk>`;

  it("names the disks whose <serial> is a volume id, and which one is the root", () => {
    const xml = `<domain type='kvm'><name>bfv</name><devices>${rbdVolume(rootVolume, 'vda')}${rbdVolume(dataVolume, 'vdb')}<disk type='file' device='cdrom'><target dev='hdc'/><serial>${dataVolume}</serial></disk></devices></domain>`;
    expect(inventoryDomain(dom, DomainState.Running, xml, 'h1').volumes).toEqual([
      { volumeId: rootVolume, device: 'vda', root: true },
      { volumeId: dataVolume, device: 'vdb', root: false },
    ]);
  });

  it('names none for an image-backed domain, or a serial that is no volume id', () => {
    const xml = `<domain type='kvm'><name>img</name><devices><disk type='file' device='disk'><driver type='qcow2'/><source file='/var/lib/nova/instances/x/disk'/><target dev='vda'/><serial>12345</serial></disk>${rbdVolume(dataVolume, 'vdb').replace(`<serial>${dataVolume}</serial>`, '<serial>not-a-volume</serial>')}</devices></domain>`;
    expect(inventoryDomain(dom, DomainState.Running, xml, 'h1').volumes).toEqual([]);
  });
});

describe('domainFlavor', () => {
  it("takes Nova's flavor record over the domain's own sizes", () => {
    expect(domainFlavor(novaDomain)).toEqual({ name: 'm1.small', vcpus: 1, memoryMiB: 2048, diskGiB: 20, swapMiB: 512, ephemeralGiB: 0 });
  });

  it("falls back to the domain's vCPUs and memory, in any of libvirt's units", () => {
    const plain = (memory: string) => `<domain type='kvm'><name>plain</name><vcpu>2</vcpu>${memory}</domain>`;
    expect(domainFlavor(plain(`<memory unit='KiB'>1048576</memory>`))).toEqual({ name: null, vcpus: 2, memoryMiB: 1024, diskGiB: 0, swapMiB: 0, ephemeralGiB: 0 });
    expect(domainFlavor(plain(`<memory unit='GiB'>3</memory>`))?.memoryMiB).toBe(3072);
    expect(domainFlavor(plain(`<memory>524288</memory>`))?.memoryMiB).toBe(512);
  });

  it('gives null when the domain states no sizes or an unknown unit', () => {
    expect(domainFlavor(`<domain><name>x</name></domain>`)).toBeNull();
    expect(domainFlavor(`<domain><vcpu>1</vcpu><memory unit='parsec'>1</memory></domain>`)).toBeNull();
  });
});

describe('scanDomains', () => {
  const good = { uuid: 'f3a1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8', name: 'good' };
  const odd = { uuid: '0b6a57d4-3c1e-4a8f-9d2b-7e5f4c3b2a19', name: 'odd' };
  const gone = { uuid: '5e2f1a3b-8c7d-4e6f-a5b4-c3d2e1f0a9b8', name: 'gone' };
  // a project id longer than the inventory's 255: the schema refuses this one domain's report
  const oddXml = novaDomain.replace('uuid="9f1c2b"', `uuid="${'p'.repeat(300)}"`);
  const host = (domains: { uuid: string; name: string }[]) =>
    ({
      connectListAllDomains: () => Promise.resolve(domains),
      domainGetState: (d: { name: string }) =>
        d.name === 'gone' ? Promise.reject(new LibvirtError({ code: VIR_ERR_NO_DOMAIN, domain: 10, message: 'no domain', level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 })) : Promise.resolve({ state: DomainState.Running, reason: 1 }),
      domainGetXMLDesc: (d: { name: string }) => Promise.resolve(d.name === 'odd' ? oddXml : novaDomain),
    }) as unknown as Libvirt;

  it("leaves out a domain whose report the schema refuses, says why, and still reports the host's others", async () => {
    const { domains, skipped } = await scanDomains(host([odd, good, gone]), 'h1');
    expect(domains.map((d) => d.name)).toEqual(['good']);
    expect(skipped).toEqual([{ uuid: odd.uuid, name: 'odd', reason: expect.stringContaining('projectId') as string }]);
  });
});
