// Nova's ComputeManager._rotate_backups, run once the new backup is active: the instance's backups
// of one backup_type, newest first, and every one beyond `rotation` deleted. Differences from Nova,
// each on purpose:
// - only the new image's project is searched (Nova lists what the caller's context sees, which may
//   be another project's image shared with it: never ours to delete);
// - only `active` images count: an image without its bytes is no backup, and it must not push a
//   restorable one out of the rotation (a failed run deletes its own image anyway);
// - the new image counts as the newest whatever the clock says, so it goes only when rotation is 0
//   (Nova deletes it then too: `rotation: 0` keeps none).
// Deleting an older image never breaks a newer one: every composed image's index names all of its
// chunks, and the store collects only chunks no index names (src/images/README.md).
import type { Logger } from 'pino';
import { ImageNotFound, type Image, type ImageClient } from '../images/client';
import { errorMessage, type RotationOutcome } from '../contract';

export interface RotationRequest {
  instanceUuid: string;
  /** the backup just made: the newest, whatever the listing's order */
  imageId: string;
  backupType: string;
  rotation: number;
}

/**
 * The instance's active backups of the request's type in the new image's project, newest first, the
 * new one at the head; null, with a warning naming what was not `done`, when the new backup is gone
 * or has no owner. Rotation and prune both select from this.
 */
export async function currentBackups(images: ImageClient, request: Pick<RotationRequest, 'instanceUuid' | 'imageId' | 'backupType'>, log: Logger, done: 'rotated' | 'pruned'): Promise<Image[] | null> {
  const owner = await backupOwner(images, request.imageId);
  if (owner === null) {
    log.warn({ image_id: request.imageId, instance_uuid: request.instanceUuid }, `the new backup is gone or has no owner: nothing ${done}`);
    return null;
  }
  return backupsNewestFirst(await images.list({ owner, status: 'active' }), request, owner);
}

/** The instance's active backups of this type in `owner`'s project, newest first, the new one at the head. */
function backupsNewestFirst(images: readonly Image[], request: Pick<RotationRequest, 'instanceUuid' | 'imageId' | 'backupType'>, owner: string): Image[] {
  const matching = images.filter(
    (i) =>
      i.status === 'active' &&
      i.owner === owner &&
      i.properties.image_type === 'backup' &&
      i.properties.backup_type === request.backupType &&
      i.properties.instance_uuid === request.instanceUuid,
  );
  // Glance's sort_key=created_at, sort_dir=desc, with the id as the tie-break our service uses.
  const byAge = [...matching].sort((a, b) => (a.created_at === b.created_at ? b.id.localeCompare(a.id) : b.created_at.localeCompare(a.created_at)));
  const fresh = byAge.filter((i) => i.id === request.imageId);
  return [...fresh, ...byAge.filter((i) => i.id !== request.imageId)];
}

/** Lists and deletes. A repeat (a retried attempt after a crash) lists again, so it finishes what the first left. */
export async function rotateBackups(images: ImageClient, request: RotationRequest, log: Logger, onDeleted: (imageId: string) => void = () => undefined): Promise<RotationOutcome> {
  const backups = await currentBackups(images, request, log, 'rotated');
  if (backups === null) return { kept: [], deleted: [], failed: [] };
  const excess = backups.slice(request.rotation);
  log.info({ instance_uuid: request.instanceUuid, backup_type: request.backupType, rotation: request.rotation, found: backups.length, excess: excess.length }, 'rotating backups');
  const { deleted, failed } = await deleteBackups(images, excess, log, onDeleted);
  return { kept: backups.slice(0, request.rotation).map((i) => i.id), deleted, failed };
}

/**
 * Deletes one backup after another; each delete that fails is reported and the rest go on, as
 * Nova's loop does. One already gone counts as deleted (a repeat after a crash).
 */
export async function deleteBackups(images: ImageClient, doomed: readonly Image[], log: Logger, onDeleted: (imageId: string) => void): Promise<Pick<RotationOutcome, 'deleted' | 'failed'>> {
  const outcome: Pick<RotationOutcome, 'deleted' | 'failed'> = { deleted: [], failed: [] };
  for (const image of doomed) {
    try {
      await images.delete(image.id);
      outcome.deleted.push(image.id);
    } catch (err) {
      if (err instanceof ImageNotFound) outcome.deleted.push(image.id);
      else {
        outcome.failed.push({ imageId: image.id, error: errorMessage(err) });
        log.info({ image_id: image.id, err: errorMessage(err) }, 'could not delete an excess backup; going on with the next');
      }
    }
    onDeleted(image.id);
  }
  return outcome;
}

/** The project the backups live in: the new image's owner (the caller's project, or the instance's). */
async function backupOwner(images: ImageClient, imageId: string): Promise<string | null> {
  try {
    return (await images.get(imageId)).owner;
  } catch (err) {
    if (err instanceof ImageNotFound) return null;
    throw err;
  }
}
