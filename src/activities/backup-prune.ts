// A schedule's retention, run after the rotation of each scheduled backup: PBS's prune selection
// (retention-selection.ts) over the same backups the rotation counts (this instance, this type, the
// new image's project, active only), with the new image first and always kept. Deleting an older
// backup never breaks a kept incremental: each composed image stands alone (its index names all of
// its chunks, and the store collects only chunks no index names; src/images/README.md).
import type { Logger } from 'pino';
import type { ImageClient } from '../images/client';
import type { PruneOutcome, PruneRequest } from '../contract';
import { currentBackups, deleteBackups } from './backup-rotation';
import { selectRetained } from './retention-selection';

/** Lists and deletes; a repeat (a retried attempt after a crash) lists again and finishes what the first left. */
export async function pruneBackups(images: ImageClient, request: PruneRequest, log: Logger, onDeleted: (imageId: string) => void = () => undefined): Promise<PruneOutcome> {
  const backups = await currentBackups(images, request, log, 'pruned');
  if (backups === null) return { kept: [], deleted: [], failed: [] };
  const retained = selectRetained(
    backups.map((b) => ({ id: b.id, createdAt: new Date(b.created_at) })),
    request.retention,
  );
  retained.add(request.imageId);
  const doomed = backups.filter((b) => !retained.has(b.id));
  log.info({ instance_uuid: request.instanceUuid, backup_type: request.backupType, retention: request.retention, found: backups.length, pruned: doomed.length }, 'pruning backups');
  const { deleted, failed } = await deleteBackups(images, doomed, log, onDeleted);
  return { kept: backups.filter((b) => retained.has(b.id)).map((b) => b.id), deleted, failed };
}
