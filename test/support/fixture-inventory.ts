import { POWER_STATE_RUNNING, type InventoryDomain, type PowerState } from '../../src/contract';
import { dataVolumeTarget } from '../../src/testing/instance-layout';
import type { InstanceFixture } from './instance-fixture';

/**
 * What a host's inventory report says about a fixture guest (project `demo` unless named, its disk as
 * vda: a file, its RBD image, or its Cinder volume; its Cinder data volumes as vdb, …).
 */
export function fixtureInventoryDomain(fixture: InstanceFixture, host: string, powerState: PowerState = POWER_STATE_RUNNING, projectId = 'demo'): InventoryDomain {
  const rbd = fixture.instance.rbd;
  const data = fixture.instance.dataVolumes.map((v, i) => ({ volumeId: v.volumeId ?? '', device: dataVolumeTarget(i), root: false, path: `${v.pool}/${v.image}` }));
  const volumes = [...(rbd?.volumeId === undefined ? [] : [{ volumeId: rbd.volumeId, device: 'vda', root: true }]), ...data.map(({ volumeId, device, root }) => ({ volumeId, device, root }))];
  return {
    uuid: fixture.instance.domain.uuid,
    name: fixture.instance.name,
    host,
    projectId,
    powerState,
    disks: [
      rbd ? { path: `${rbd.pool}/${rbd.image}`, format: 'raw', target: 'vda' } : { path: fixture.instance.overlayPath, format: fixture.instance.diskFormat, target: 'vda' },
      ...data.map((v) => ({ path: v.path, format: 'raw' as const, target: v.device })),
    ],
    imageRef: null,
    ...(volumes.length === 0 ? {} : { volumes }),
  };
}
