// The host's claim that an instance's disks are Cinder volumes (Nova writes the volume id as the
// disk's `<serial>`), confirmed by Cinder: each volume must exist in the project and carry an
// attachment to that instance. A hand-made domain can name any volume id as a serial; only what
// Cinder confirms is snapshotted, and a claim Cinder denies fails the snapshot as bad input.
import { CinderError } from './errors';
import type { CinderClient } from './client';
import type { CinderVolume } from './schemas';

export interface ClaimedVolume {
  volumeId: string;
  /** guest device, e.g. vda */
  device: string;
  root: boolean;
}

export interface ConfirmedVolume extends ClaimedVolume {
  /** GiB, Cinder's */
  sizeGiB: number;
  volume: CinderVolume;
}

/** A claimed volume Cinder does not know in the project, or knows as not attached to the instance. */
export class VolumeNotAttached extends Error {
  override readonly name = 'VolumeNotAttached';
  readonly retryable = false;
  constructor(
    readonly volumeId: string,
    readonly instanceUuid: string,
    detail: string,
  ) {
    super(`volume ${volumeId} is not attached to instance ${instanceUuid}: ${detail}`);
  }
}

export async function confirmAttachedVolumes(cinder: CinderClient, instanceUuid: string, claimed: readonly ClaimedVolume[]): Promise<ConfirmedVolume[]> {
  return Promise.all(
    claimed.map(async (claim) => {
      let volume: CinderVolume;
      try {
        volume = await cinder.showVolume(claim.volumeId);
      } catch (err) {
        if (err instanceof CinderError && err.notFound) throw new VolumeNotAttached(claim.volumeId, instanceUuid, 'Cinder does not know it in the instance project');
        throw err;
      }
      const attachments = await cinder.listAttachments(claim.volumeId);
      const ours = attachments.find((a) => a.instance === instanceUuid && a.status === 'attached');
      if (ours === undefined) {
        const others = attachments.map((a) => `${a.instance ?? 'none'} (${a.status})`).join(', ') || 'none';
        throw new VolumeNotAttached(claim.volumeId, instanceUuid, `its attachments: ${others}`);
      }
      return { ...claim, sizeGiB: volume.size, volume };
    }),
  );
}
