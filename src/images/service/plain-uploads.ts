// Glance's plain upload, `PUT /v2/images/{id}/file`: queued (or killed) → saving → active, the data
// received whole into the blob store, re-read and checked when verification is on, and only then
// active; a failure kills the image, or leaves it as it was when the client fell silent.
import type { Readable } from 'node:stream';
import { actsForSnapshotService, type RequestContext } from './image-auth';
import type { LocalImageBlobStore } from '../store/image-blob-store';
import { ImageConflict, ImageTooLarge, ImageVerificationFailed, UploadIdleTimeout } from '../client/image-errors';
import type { ImageRecord, ImageStatus } from '../client/image-record';
import type { ImageRecordRepository } from './image-record-repository';
import type { ImageQuotas } from './quotas';
import { deletedDuringUpload, presentOrGone, storedFailure } from './upload-failures';

export interface PlainUploadsDeps {
  records: ImageRecordRepository;
  blobs: LocalImageBlobStore;
  quotas: ImageQuotas;
  /** The visibility-checked lookup, 403 under the snapshot service's write lock (ImageService.writable). */
  writable: (ctx: RequestContext, id: string) => ImageRecord;
  /** Glance's image_size_cap */
  maxImageBytes: number;
  /** Re-read the published bytes and check both digests before the image turns active. */
  verify: boolean;
  timestamp: () => string;
}

export class PlainUploads {
  /** Images a plain upload of this process holds. */
  private readonly saving = new Set<string>();

  constructor(private readonly deps: PlainUploadsDeps) {}

  /**
   * Accepts image data for a queued image, or again for a killed one: a snapshot's upload that
   * broke (worker killed, connection lost) is retried from the start, which Glance v2 itself does
   * not allow. One plain upload per image at a time (claimed before any await, so a concurrent
   * second one gets 409); a `saving` record no upload of this process holds is one whose failure
   * could not be recorded (a full disk), and is taken like a killed one. The record turns active
   * only once the data is published, and only by a durable write: any failure leaves it not active.
   */
  async upload(ctx: RequestContext, id: string, source: Readable, declaredLength?: number): Promise<ImageRecord> {
    const record = this.deps.writable(ctx, id);
    const refusal = (status: ImageStatus) => new ImageConflict(`Image status transition from ${status} to saving is not allowed`);
    if ((record.status !== 'queued' && record.status !== 'killed' && record.status !== 'saving') || this.saving.has(id)) throw refusal(record.status);
    if (declaredLength !== undefined && declaredLength > this.deps.maxImageBytes) {
      throw new ImageTooLarge(`Image exceeds the storage quota of ${this.deps.maxImageBytes} bytes`);
    }
    // Glance's upload checks, on the project that owns the image; nothing changed when refused.
    this.deps.quotas.enforce(record.owner, 'image_size_total', 0);
    this.deps.quotas.enforce(record.owner, 'image_count_uploading', 0, id);
    this.saving.add(id);
    try {
      await this.deps.records
        .update(id, (current) => {
          const now = presentOrGone(id, current);
          if (now.status !== 'queued' && now.status !== 'killed' && now.status !== 'saving') throw refusal(now.status);
          return { ...now, status: 'saving', updated_at: this.deps.timestamp() };
        })
        .catch((err: unknown) => {
          throw storedFailure(id, err);
        });
      return await this.receive(ctx, id, source, record.status === 'saving' ? 'killed' : record.status);
    } finally {
      this.saving.delete(id);
    }
  }

  /**
   * The data of a claimed (saving) image, published, verified, then active. On a failure its data
   * goes: a client that fell silent leaves the image as it was (`before`), data that broke kills it.
   */
  private async receive(ctx: RequestContext, id: string, source: Readable, before: ImageStatus): Promise<ImageRecord> {
    try {
      const data = await this.deps.blobs.receive(id, source, this.deps.maxImageBytes);
      if (this.deps.verify) await this.verifyStored(id, data);
      // The current record, not the one the upload started from: `protected` may change meanwhile.
      return await this.deps.records.update(id, (current) => {
        // Deleted meanwhile: the data goes (below), the deletion stands.
        if (current?.status !== 'saving') throw deletedDuringUpload(id);
        return releasedBy(ctx, {
          ...current,
          status: 'active',
          size: data.size,
          checksum: data.md5,
          os_hash_algo: 'sha512',
          os_hash_value: data.sha512,
          updated_at: this.deps.timestamp(),
        });
      });
    } catch (err) {
      await this.deps.blobs.remove(id);
      const status = err instanceof UploadIdleTimeout ? before : 'killed';
      // When even this write fails the record stays saving, which the next upload takes over.
      await this.deps.records
        .update(id, (current) => {
          if (current?.status !== 'saving') throw deletedDuringUpload(id);
          return { ...current, status, updated_at: this.deps.timestamp() };
        })
        .catch(() => undefined);
      throw storedFailure(id, err);
    }
  }

  /** Verify-after-commit of a plain upload: the published file re-read must hash as received. */
  private async verifyStored(id: string, received: { size: number; md5: string; sha512: string }): Promise<void> {
    const stored = await this.deps.blobs.digest(id);
    if (stored.size === received.size && stored.md5 === received.md5 && stored.sha512 === received.sha512) return;
    await this.deps.blobs.remove(id);
    throw new ImageVerificationFailed(
      `Verification of image ${id} failed: the stored data (${stored.size} bytes, md5 ${stored.md5}) differs from the received data (${received.size} bytes, md5 ${received.md5}); the image is killed`,
    );
  }
}

/** The record without its write lock when the snapshot service's own write made it active. */
function releasedBy(ctx: RequestContext, record: ImageRecord): ImageRecord {
  if (!actsForSnapshotService(ctx)) return record;
  const { snapshot_write_lock: _released, ...rest } = record;
  return rest;
}
