import { missingPassthrough, parseDomainXml, rootDisk, DomainXmlError } from '../../../src/host/domain-xml';

const LIVE = `<domain type='kvm' id='7'>
  <name>instance-0001</name>
  <devices>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/var/lib/nova/config.iso'/><target dev='hdc' bus='sata'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/nova/instances/a&amp;b/disk'/><target dev='vda' bus='virtio'/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='vms/uuid_disk.eph0'/><target dev='vdb' bus='virtio'/></disk>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x1234'/></source></hostdev>
    <interface type='hostdev' managed='yes'><mac address='52:54:00:6d:90:02'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x10' function='0x1'/></source></interface>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
  </devices>
</domain>`;

describe('parseDomainXml', () => {
  const facts = parseDomainXml(LIVE);

  it('reads virt type and disks, decoding XML entities', () => {
    expect(facts.virtType).toBe('kvm');
    expect(facts.disks.map((d) => [d.target, d.source, d.driverType, d.device, d.sourceType])).toEqual([
      ['hdc', '/var/lib/nova/config.iso', 'raw', 'cdrom', 'file'],
      ['vda', '/var/lib/nova/instances/a&b/disk', 'qcow2', 'disk', 'file'],
      ['vdb', 'vms/uuid_disk.eph0', 'raw', 'disk', 'network'],
    ]);
  });

  it('finds PCI host devices and SR-IOV ports, not USB devices or plain interfaces', () => {
    expect(facts.passthrough.map((d) => [d.kind, d.key])).toEqual([
      ['hostdev', 'pci:0x0000:0x06:0x02:0x0'],
      ['sriov-port', 'mac:52:54:00:6d:90:02'],
    ]);
    expect(facts.passthrough[0]?.xml).toMatch(/^<hostdev [^>]*type="pci"/);
    expect(facts.passthrough[1]?.xml).toContain('<mac address="52:54:00:6d:90:02"');
  });

  it('picks vda as the root disk over a cdrom listed first', () => {
    expect(rootDisk(facts).target).toBe('vda');
  });

  it('falls back to the first disk when no conventional root target exists', () => {
    const xml = `<domain type='qemu'><devices><disk type='file' device='disk'><source file='/x/y'/><target dev='vdc'/></disk></devices></domain>`;
    expect(rootDisk(parseDomainXml(xml))).toMatchObject({ target: 'vdc', source: '/x/y', driverType: null });
  });

  it('rejects a domain without a usable root disk and XML that is not a domain', () => {
    expect(() => rootDisk(parseDomainXml(`<domain type='kvm'><devices/></domain>`))).toThrow(DomainXmlError);
    expect(() => parseDomainXml('<network><name>x</name></network>')).toThrow(DomainXmlError);
  });

  it('lists the devices the running domain lacks compared with its persistent definition', () => {
    const withoutDevices = LIVE.replace(/<hostdev mode='subsystem' type='pci'[\s\S]*?<\/hostdev>/, '').replace(/<interface type='hostdev'[\s\S]*?<\/interface>/, '');
    const missing = missingPassthrough(facts, parseDomainXml(withoutDevices));
    expect(missing.map((d) => d.kind)).toEqual(['hostdev', 'sriov-port']);
    expect(missingPassthrough(facts, facts)).toEqual([]);
  });

  it('round-trips a detached device into XML the parser reads back with the same key', () => {
    const [hostdev] = facts.passthrough;
    const again = parseDomainXml(`<domain type='kvm'><devices>${hostdev?.xml ?? ''}</devices></domain>`);
    expect(again.passthrough[0]?.key).toBe(hostdev?.key);
  });
});

describe('the backing chain libvirt records', () => {
  const disk = (inner: string, driver = 'qcow2'): string =>
    `<domain type='kvm'><devices><disk type='file' device='disk'><driver name='qemu' type='${driver}'/><source file='/i/disk' index='1'/>${inner}<target dev='vda'/></disk></devices></domain>`;

  it('reads a running domain\'s <backingStore> layers, nearest first, with their formats, up to the empty end marker', () => {
    const xml = disk(
      `<backingStore type='file' index='2'><format type='qcow2'/><source file='/i/_base/mid'/><backingStore type='file' index='3'><format type='raw'/><source file='/i/_base/img'/><backingStore/></backingStore></backingStore>`,
    );
    expect(rootDisk(parseDomainXml(xml)).backingStore).toEqual([
      { sourceType: 'file', format: 'qcow2', source: '/i/_base/mid', hasDataStore: false },
      { sourceType: 'file', format: 'raw', source: '/i/_base/img', hasDataStore: false },
    ]);
  });

  it('tells "no backing" (<backingStore/>) from "not described" (a stopped domain\'s definition)', () => {
    expect(rootDisk(parseDomainXml(disk('<backingStore/>', 'raw'))).backingStore).toEqual([]);
    expect(rootDisk(parseDomainXml(disk('', 'raw'))).backingStore).toBeNull();
  });

  it('notes external data files and refuses a chain deeper than any Nova makes', () => {
    const withData = rootDisk(parseDomainXml(disk(`<dataStore type='file'><format type='raw'/><source file='/etc/shadow'/></dataStore><backingStore/>`)));
    expect(withData.hasDataStore).toBe(true);
    let deep = '<backingStore/>';
    for (let i = 0; i < 17; i++) deep = `<backingStore type='file'><format type='qcow2'/><source file='/i/l${i}'/>${deep}</backingStore>`;
    expect(() => parseDomainXml(disk(deep))).toThrow(DomainXmlError);
  });
});
