import { novaOwnership } from '../../../src/host/domain-inventory';

describe('novaOwnership', () => {
  it("reads Nova's owner project and root image from the domain metadata", () => {
    const xml = `<domain type='kvm'><name>instance-00000001</name><metadata>
      <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
        <nova:owner><nova:user uuid="u1">admin</nova:user><nova:project uuid="9f1c2b">demo</nova:project></nova:owner>
        <nova:root type="image" uuid="b8e5d3a0-1111-4222-8333-444455556666"/>
      </nova:instance></metadata></domain>`;
    expect(novaOwnership(xml)).toEqual({ projectId: '9f1c2b', imageRef: 'b8e5d3a0-1111-4222-8333-444455556666' });
  });

  it('gives nulls for a domain Nova did not define, and ignores a volume root', () => {
    expect(novaOwnership(`<domain type='kvm'><name>plain</name></domain>`)).toEqual({ projectId: null, imageRef: null });
    const volumeRoot = `<domain><metadata><nova:instance xmlns:nova="x"><nova:root type="volume" uuid="v1"/></nova:instance></metadata></domain>`;
    expect(novaOwnership(volumeRoot).imageRef).toBeNull();
  });
});
