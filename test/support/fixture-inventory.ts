import { POWER_STATE_RUNNING, type InventoryDomain, type PowerState } from '../../src/contract';
import type { InstanceFixture } from './instance-fixture';

/** What a host's inventory report says about a fixture guest (project `demo` unless named, its disk as vda: a file, its RBD image, or its Cinder volume). */
export function fixtureInventoryDomain(fixture: InstanceFixture, host: string, powerState: PowerState = POWER_STATE_RUNNING, projectId = 'demo'): InventoryDomain {
  const rbd = fixture.instance.rbd;
  return {
    uuid: fixture.instance.domain.uuid,
    name: fixture.instance.name,
    host,
    projectId,
    powerState,
    disks: [rbd ? { path: `${rbd.pool}/${rbd.image}`, format: 'raw', target: 'vda' } : { path: fixture.instance.overlayPath, format: fixture.instance.diskFormat, target: 'vda' }],
    imageRef: null,
    ...(rbd?.volumeId === undefined ? {} : { volumes: [{ volumeId: rbd.volumeId, device: 'vda', root: true }] }),
  };
}
