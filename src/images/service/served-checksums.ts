// Glance's `checksum` (md5) and `os_hash_value` (sha512) of composed images, computed after the image
// turns active, as Glance computes them for images added by location (`do_secure_hash`): a commit
// costs what its change costs, not a pass over the whole served image. Until the pass is done the
// three fields are null, which Glance's API allows and clients take as "nothing to verify yet"
// (src/images/README.md, "Checksums after activation"). One image at a time, in the hash threads;
// at start every active composed image still without them is queued again, so a pass a stop or a
// crash cut short is finished later. A chunk found damaged fails the pass (the image is marked, as a
// download marks it) and leaves the fields null.
import type { ImageRecordRepository } from './image-record-repository';
import type { ComposedImages } from '../store/composed-images';
import type { HashPool } from '../store/hash-pool';
import { errorMessage } from '../../contract';

export interface ServedChecksumsDeps {
  records: ImageRecordRepository;
  composed: ComposedImages;
  hashes: HashPool;
  warn: (details: Record<string, unknown>, message: string) => void;
}

/** The image was deleted or changed under the pass: nothing to write, nothing to warn about. */
class ImageLeft extends Error {
  override readonly name = 'ImageLeft';
}

export class ServedChecksums {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: ServedChecksumsDeps) {}

  /** Queues every active image that has a composed index and no checksum yet (at start). */
  async resume(): Promise<string[]> {
    const ids: string[] = [];
    for (const record of this.deps.records.all()) {
      if (record.status === 'active' && record.checksum === null && (await this.deps.composed.has(record.id))) ids.push(record.id);
    }
    for (const id of ids) this.schedule(id);
    return ids;
  }

  schedule(id: string): void {
    if (this.stopped || this.queued.has(id)) return;
    this.queued.add(id);
    this.queue.push(id);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves once no pass is queued or running (tests, benches). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** No new pass starts; the one running ends with its image (its fields stay null, and the next start computes them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    await this.running;
  }

  private async drain(): Promise<void> {
    for (let id = this.queue.shift(); id !== undefined && !this.stopped; id = this.queue.shift()) {
      try {
        await this.pass(id);
      } catch (err) {
        if (err instanceof ImageLeft) continue;
        this.deps.warn({ imageId: id, err: errorMessage(err) }, 'checksums of a composed image could not be computed; the next start tries again');
      } finally {
        this.queued.delete(id);
      }
    }
  }

  private async pass(id: string): Promise<void> {
    const record = this.deps.records.get(id);
    if (record?.status !== 'active' || record.checksum !== null) return;
    const data = await this.deps.composed.openData(id);
    if (data === null) return;
    const hashes = this.deps.hashes.open();
    let size = 0;
    try {
      for await (const bytes of data) {
        if (this.stopped) {
          data.destroy();
          return;
        }
        size += (bytes as Buffer).length;
        await hashes.update(bytes as Buffer);
      }
      const { md5, sha512 } = await hashes.digests();
      await this.deps.records.update(id, (current) => {
        // Deleted, replaced or already set meanwhile: nothing to write.
        if (current?.status !== 'active' || current.checksum !== null) throw new ImageLeft();
        if (current.size !== size) throw new Error(`image ${id} served ${size} bytes, its record says ${String(current.size)}`);
        return { ...current, checksum: md5, os_hash_algo: 'sha512', os_hash_value: sha512 };
      });
    } finally {
      hashes.close();
      data.destroy();
    }
  }
}
