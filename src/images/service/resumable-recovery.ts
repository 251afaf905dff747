// What a restart does with the resumable sessions a stopped (or killed) process left, once the
// image records are loaded: an uploading image with an intact session stays uploading and
// resumable; one without is killed; session files of images not uploading are removed. An
// uploading image has no published data: a file or an index there is from a commit cut short.
import type { StagedSessionMeta, StagedUploadFiles } from './staged-upload-files';
import type { ImageRecordRepository, RepositoryWarning } from './image-record-repository';
import type { LocalImageBlobStore } from '../store/image-blob-store';
import type { ComposedImages } from '../store/composed-images';

/** What a recovery touches: the session files, the records, and the data a cut commit may have left. */
export interface RecoveryDeps {
  files: StagedUploadFiles;
  records: ImageRecordRepository;
  blobs: LocalImageBlobStore;
  composed: ComposedImages;
  timestamp: () => string;
}

export interface ResumableRecovery {
  /** uploading images whose session survived: they stay uploading and resumable */
  resumedUploadIds: string[];
  /** uploading images without an intact session: killed */
  killedImageIds: string[];
  /** session files removed: broken ones, and those of images not uploading (deleted, killed, active, missing) */
  removedSessionIds: string[];
}

/** The sessions to resume (meta and committed length, by image id), and the report. */
export async function recoverSessions(
  deps: RecoveryDeps,
  warn: RepositoryWarning,
): Promise<{ resumed: Map<string, { meta: StagedSessionMeta; committed: number }>; report: ResumableRecovery }> {
  const { sessions: onDisk, removedIds } = await deps.files.scan(warn);
  const report: ResumableRecovery = { resumedUploadIds: [], killedImageIds: [], removedSessionIds: [...removedIds] };
  const resumed = new Map<string, { meta: StagedSessionMeta; committed: number }>();
  for (const record of deps.records.all()) {
    if (record.status !== 'uploading') continue;
    await deps.blobs.remove(record.id);
    await deps.composed.removeIndex(record.id);
    const found = onDisk.get(record.id);
    onDisk.delete(record.id);
    if (found !== undefined) {
      resumed.set(record.id, found);
      report.resumedUploadIds.push(record.id);
    } else {
      await deps.records.put({ ...record, status: 'killed', updated_at: deps.timestamp() });
      report.killedImageIds.push(record.id);
    }
  }
  for (const id of onDisk.keys()) {
    await deps.files.remove(id);
    report.removedSessionIds.push(id);
  }
  return { resumed, report };
}
