// Lifecycle, lookup, info and XML calls against the real libvirtd + QEMU on this machine.
import { hostname } from 'node:os';
import {
  DomainState,
  Libvirt,
  LibvirtError,
  VIR_CONNECT_LIST_DOMAINS_ACTIVE,
  VIR_CONNECT_LIST_DOMAINS_INACTIVE,
  VIR_DOMAIN_START_PAUSED,
  VIR_DOMAIN_XML_INACTIVE,
  VIR_ERR_NO_DOMAIN,
  VIR_ERR_OPERATION_INVALID,
} from '../../../src/libvirt';
import { buildDomainXml, hasPatternSafe } from './helpers';
import { DEFAULT_TEST_URI, useInstanceFixture } from '../../support/instance-fixture';
import { BASE_PATTERN, OVERLAY_PATTERN } from '../../../src/testing/instance-layout';

describe('libvirt client: connection calls', () => {
  let client: Libvirt;
  beforeAll(async () => {
    client = await Libvirt.connect(DEFAULT_TEST_URI);
  });
  afterAll(async () => {
    await client.close();
  });

  it('reports the library and hypervisor versions libvirtd and QEMU report to virsh', async () => {
    const lib = await client.connectGetLibVersion();
    const hv = await client.connectGetVersion();
    expect(lib).toBeGreaterThanOrEqual(9_000_000);
    expect(hv).toBeGreaterThanOrEqual(7_002_000);
    expect(await client.connectGetType()).toBe('QEMU');
  });

  it('reports the host name', async () => {
    expect(await client.connectGetHostname()).toBe(hostname());
  });

  it('fails lookups of unknown domains with VIR_ERR_NO_DOMAIN', async () => {
    const err = await client.domainLookupByName('snaptest-does-not-exist').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(VIR_ERR_NO_DOMAIN);
    expect((err as LibvirtError).message).toMatch(/no domain with matching name/);
    const err2 = await client.domainLookupByUUID('00000000-0000-0000-0000-000000000001').catch((e: unknown) => e);
    expect((err2 as LibvirtError).code).toBe(VIR_ERR_NO_DOMAIN);
  });
});

describe('libvirt client: domain lifecycle on a Nova-style instance', () => {
  const fixture = useInstanceFixture();

  it('laid out base + overlay with the known patterns in each layer', async () => {
    const { instance } = fixture();
    expect(await hasPatternSafe(instance.basePath, BASE_PATTERN)).toBe(true);
    expect(await hasPatternSafe(instance.overlayPath, OVERLAY_PATTERN)).toBe(true);
    // The overlay reads the base's data through its backing file.
    expect(await hasPatternSafe(instance.overlayPath, BASE_PATTERN)).toBe(true);
    expect(await hasPatternSafe(instance.basePath, OVERLAY_PATTERN)).toBe(false);
  });

  it('finds the domain by name and by UUID, and lists it among active domains', async () => {
    const { client, instance } = fixture();
    const byName = await client.domainLookupByName(instance.name);
    expect(byName.uuid).toBe(instance.domain.uuid);
    expect(byName.id).toBeGreaterThan(0);
    const byUuid = await client.domainLookupByUUID(instance.domain.uuid);
    expect(byUuid.name).toBe(instance.name);
    const active = await client.connectListAllDomains(VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    expect(active.map((d) => d.name)).toContain(instance.name);
    const inactive = await client.connectListAllDomains(VIR_CONNECT_LIST_DOMAINS_INACTIVE);
    expect(inactive.map((d) => d.name)).not.toContain(instance.name);
  });

  it('returns info and state of the running domain', async () => {
    const { client, instance } = fixture();
    const info = await client.domainGetInfo(instance.domain);
    expect(info.state).toBe(DomainState.Running);
    expect(info.maxMem).toBe(instance.memoryMiB * 1024);
    expect(info.nrVirtCpu).toBe(1);
    expect(info.cpuTime).toBeGreaterThan(0n);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Running);
  });

  it('returns live and inactive XML naming the overlay as vda', async () => {
    const { client, instance } = fixture();
    const live = await client.domainGetXMLDesc(instance.domain);
    expect(live).toContain(`<name>${instance.name}</name>`);
    expect(live).toContain(instance.overlayPath);
    expect(live).toMatch(/<target dev='vda' bus='virtio'\/>/);
    // The live definition exposes the chain libvirt probed: overlay → base.
    expect(live).toMatch(new RegExp(`<backingStore type='file'[^>]*>\\s*<format type='qcow2'/>\\s*<source file='${instance.basePath}'/>`));
    const inactive = await client.domainGetXMLDesc(instance.domain, VIR_DOMAIN_XML_INACTIVE);
    expect(inactive).not.toMatch(/<backingStore type='file'/);
    expect(inactive).toContain(`type='${instance.domainType}'`);
  });

  it('suspends and resumes', async () => {
    const { client, instance } = fixture();
    await client.domainSuspend(instance.domain);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Paused);
    // Measured on libvirt 9.0: suspending a paused domain is a no-op, resuming a running one is refused.
    await client.domainSuspend(instance.domain);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Paused);
    await client.domainResume(instance.domain);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Running);
    const err = await client.domainResume(instance.domain).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(VIR_ERR_OPERATION_INVALID);
    expect((err as LibvirtError).message).toMatch(/domain is already running/);
  });

  it('managedSave then create → running, with the image consumed', async () => {
    const { client, instance } = fixture();
    await client.domainManagedSave(instance.domain);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Shutoff);
    expect(await client.domainHasManagedSaveImage(instance.domain)).toBe(true);
    const started = await client.domainCreateWithFlags(instance.domain);
    expect(started.id).toBeGreaterThan(0);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Running);
    expect(await client.domainHasManagedSaveImage(instance.domain)).toBe(false);
  });

  it('managedSave then create with VIR_DOMAIN_START_PAUSED → paused', async () => {
    const { client, instance } = fixture();
    await client.domainManagedSave(instance.domain);
    await client.domainCreateWithFlags(instance.domain, VIR_DOMAIN_START_PAUSED);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Paused);
    await client.domainResume(instance.domain);
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Running);
  });

  it('destroy stops it; a second destroy is refused as operation-invalid', async () => {
    const { client, instance } = fixture();
    await client.domainDestroy(instance.domain);
    expect((await client.domainGetInfo(instance.domain)).state).toBe(DomainState.Shutoff);
    const err = await client.domainDestroy(instance.domain).catch((e: unknown) => e);
    expect((err as LibvirtError).code).toBe(VIR_ERR_OPERATION_INVALID);
    expect((err as LibvirtError).message).toMatch(/domain is not running/);
    const restarted = await client.domainCreateWithFlags(instance.domain);
    expect((await client.domainGetState(restarted)).state).toBe(DomainState.Running);
  });
});

describe('libvirt client: define and undefine', () => {
  const fixture = useInstanceFixture({ start: false, prefix: 'snaptest-def' });

  it('defines from XML, starts paused, and undefines (managed save image included)', async () => {
    const { client, instance } = fixture();
    expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Shutoff);
    const second = { ...instance, name: `${instance.name}-b` };
    const xml = buildDomainXml(second).replace(/<uuid>[^<]*<\/uuid>/, '');
    const dom = await client.domainDefineXML(xml);
    try {
      expect(dom.name).toBe(second.name);
      expect(dom.id).toBe(-1);
      const running = await client.domainCreateWithFlags(dom, VIR_DOMAIN_START_PAUSED);
      expect((await client.domainGetState(running)).state).toBe(DomainState.Paused);
      await client.domainManagedSave(running);
      expect(await client.domainHasManagedSaveImage(running)).toBe(true);
    } finally {
      await client.domainUndefineFlags(dom, 1 /* VIR_DOMAIN_UNDEFINE_MANAGED_SAVE */);
    }
    const err = await client.domainLookupByName(second.name).catch((e: unknown) => e);
    expect((err as LibvirtError).code).toBe(VIR_ERR_NO_DOMAIN);
  });
});
