// Which of a domain's disks are Cinder volumes, as Nova lays them out: Nova writes the volume id as
// the disk's `<serial>` (and an RBD volume's source as `volumes/volume-<id>`). This is the host's
// claim only; a guest cannot write its domain XML, but an operator's hand-made domain can carry any
// serial, so the control side confirms each volume against Cinder's attachments before it acts.
import { z } from 'zod';
import type { InventoryVolume } from '../contract';
import { findRootDisk, type DomainFacts } from './domain-xml';

const VolumeIdSchema = z.string().uuid();

export function volumeDisks(facts: DomainFacts): InventoryVolume[] {
  const root = findRootDisk(facts);
  const volumes: InventoryVolume[] = [];
  for (const disk of facts.disks.filter((d) => d.device === 'disk')) {
    const serial = disk.serial?.trim().toLowerCase() ?? '';
    if (!VolumeIdSchema.safeParse(serial).success) continue;
    volumes.push({ volumeId: serial, device: disk.target, root: disk === root });
  }
  return volumes;
}
