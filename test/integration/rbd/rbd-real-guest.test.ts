// Snapshots of a real writing guest whose root disk is in Ceph RBD (Nova's images_type=rbd): a raw
// image vms/<uuid>_disk, a network disk in the domain XML, the cephx key in a libvirt secret.
import { createRealGuest } from '../../support/guest/real-guest-run';
import { rbdSnapshotsOf, useRbdGuests } from '../../support/rbd-guest';

const rbd = useRbdGuests();

describe('a real guest on an RBD disk', () => {
  it('boots from the RBD image and writes to it', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 512 }, ...rbd().guestOptions() });
    try {
      const xml = await fixture.client.domainGetXMLDesc(fixture.instance.domain, 0);
      expect(xml).toContain(`<source protocol='rbd' name='vms/${fixture.instance.uuid}_disk'`);
      expect(await rbdSnapshotsOf(fixture)).toEqual([]);
    } finally {
      await fixture.cleanup();
    }
  });
});
