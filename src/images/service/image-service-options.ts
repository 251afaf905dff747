// What an image service is opened with, and what its start-up repair reports (image-service.ts).
import type { RepositoryWarning } from './image-record-repository';
import type { ImageQuotaLimits, ProjectQuotaOverrides } from './quotas';
import type { VerifyJobSettings } from './verify-jobs';
import type { SharedStoreBackend } from '../store/store-backend';

export interface ImageServiceOptions {
  dataDir: string;
  /** Upper bound for one image's data (Glance's image_size_cap). */
  maxImageBytes: number;
  now?: () => Date;
  warn?: RepositoryWarning;
  /**
   * Re-read an image's bytes once they are published (plain PUT and resumable commit) and check
   * size, md5 and sha512 against what was received before the image turns active; a mismatch
   * kills it. Default true; SNAP_IMAGE_VERIFY for the standalone server.
   */
  verifyAfterCommit?: boolean;
  /**
   * How long a deleted image's record is kept (its id stays taken, a GET answers 404) before it
   * is purged from memory and disk, at open and by a timer. Default DEFAULT_DELETED_RETENTION_MS.
   */
  deletedRetentionMs?: number;
  /** Per-project limits (Glance's unified limits names); default unlimited. */
  quotas?: ImageQuotaLimits;
  /** Limits of named projects that differ from `quotas`. */
  quotaOverrides?: ProjectQuotaOverrides;
  /** The store's verify jobs: their interval (none: on request only) and re-verify age (default 30 days). */
  verifyJobs?: Partial<VerifyJobSettings>;
  /** Chunks and indexes in a bucket other services share (closed by the caller), swept in the background every sharedStoreSweepMs (default hourly). */
  sharedStore?: SharedStoreBackend;
  sharedStoreSweepMs?: number;
  /** How stale another service's record read through the shared store may be (default 5 s). */
  sharedRecordsTtlMs?: number;
}

export interface RecoveryReport {
  removedStagingFiles: string[];
  killedImageIds: string[];
  /** uploading images whose resumable session survived the restart */
  resumedUploadIds: string[];
  /** resumable session files removed: broken ones, and those of images no longer uploading */
  removedUploadSessionIds: string[];
  /** indexes of images not active, removed */
  removedIndexIds: string[];
  /** chunks no index named any more, removed */
  removedChunks: number;
}
