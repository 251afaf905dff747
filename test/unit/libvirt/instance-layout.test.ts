// Validation of everything that reaches a path, a command line or domain XML.
import { buildDiskXml, buildDomainXml, planInstance, validateInstanceName } from '../../../src/testing/instance-layout';
import { assertSafePath } from '../../../src/host/qemu-img';

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
    expect(() => planInstance({ name: 'x', dir: '/tmp', memoryMiB: 512 })).toThrow(/64\.\.128/);
    expect(() => buildDiskXml('/tmp/x.qcow2', 'sda')).toThrow(/invalid virtio target/);
  });
});
