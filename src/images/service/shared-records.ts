// Image records shared through a shared store's bucket (docs/object-store.md, "Shared records"):
// each service writes its own records there after its local durable write, and reads other
// services' records through to the bucket, cached at most `ttlMs`. What the bucket holds is read
// like any other input: zod-parsed, and a record that does not parse (or names another id) is
// skipped with a warning, never served.
import { errorMessage } from '../../contract';
import { ImageRecordSchema, type ImageRecord } from '../client/image-record';
import type { RemoteRecords } from '../store/store-backend';
import type { RepositoryWarning } from './image-record-repository';

interface Cached {
  record: ImageRecord | undefined;
  etag: string;
  at: number;
}

/** Records read at once while a listing catches up: a few, not one request per record in a burst. */
const PARALLEL_READS = 8;

export class SharedRecords {
  private readonly cache = new Map<string, Cached>();
  private listedAt = -Infinity;
  private listing: Promise<void> | undefined;

  constructor(
    private readonly remote: RemoteRecords,
    private readonly warn: RepositoryWarning,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * The bucket's copy follows a local durable write. A failure is logged, not thrown: the record
   * is durable here, and the bucket holds its previous version until the record's next change.
   */
  async publish(record: ImageRecord): Promise<void> {
    try {
      await this.remote.put(record.id, Buffer.from(JSON.stringify(record)));
    } catch (err) {
      this.warn({ imageId: record.id, err: errorMessage(err) }, 'the shared copy of an image record could not be written; other services see its previous version');
    }
    this.cache.delete(record.id);
  }

  async unpublish(id: string): Promise<void> {
    try {
      await this.remote.remove(id);
    } catch (err) {
      this.warn({ imageId: id, err: errorMessage(err) }, 'the shared copy of a purged image record could not be removed');
    }
    this.cache.delete(id);
  }

  /** The bucket's record of `id`, read at most `maxAgeMs` ago; undefined when it has none (or none that parses). */
  async lookup(id: string, maxAgeMs = this.ttlMs): Promise<ImageRecord | undefined> {
    const cached = this.cache.get(id);
    if (cached !== undefined && this.clock() - cached.at < maxAgeMs) return cached.record;
    return (await this.read(id))?.record;
  }

  /** Every record the bucket holds, listed at most `ttlMs` ago; only records whose version changed are read again. */
  async all(): Promise<ImageRecord[]> {
    if (this.clock() - this.listedAt >= this.ttlMs) {
      this.listing ??= this.relist().finally(() => (this.listing = undefined));
      await this.listing;
    }
    return [...this.cache.values()].flatMap((c) => (c.record === undefined ? [] : [c.record]));
  }

  /**
   * Writes `next` over the version of the record last read (S3's If-Match): false when another
   * service changed or removed it since, and nothing is written.
   */
  async replace(next: ImageRecord): Promise<boolean> {
    const cached = this.cache.get(next.id);
    if (cached === undefined) return false;
    const written = await this.remote.replace(next.id, Buffer.from(JSON.stringify(next)), cached.etag);
    this.cache.delete(next.id);
    return written;
  }

  private async read(id: string): Promise<Cached | undefined> {
    const at = this.clock();
    const got = await this.remote.get(id);
    if (got === undefined) {
      this.cache.delete(id);
      return undefined;
    }
    const entry = { record: this.parse(id, got.bytes), etag: got.etag, at };
    this.cache.set(id, entry);
    return entry;
  }

  private async relist(): Promise<void> {
    const at = this.clock();
    const listed = await this.remote.list();
    const seen = new Set(listed.map((l) => l.id));
    for (const id of this.cache.keys()) if (!seen.has(id)) this.cache.delete(id);
    const stale = listed.filter((l) => {
      const cached = this.cache.get(l.id);
      if (cached === undefined || l.etag === '' || cached.etag !== l.etag) return true;
      cached.at = at;
      return false;
    });
    for (let i = 0; i < stale.length; i += PARALLEL_READS) await Promise.all(stale.slice(i, i + PARALLEL_READS).map((l) => this.read(l.id)));
    this.listedAt = at;
  }

  private parse(id: string, bytes: Buffer): ImageRecord | undefined {
    try {
      const record = ImageRecordSchema.parse(JSON.parse(bytes.toString('utf8')));
      if (record.id !== id) throw new Error(`record id ${record.id} does not match its key`);
      return record;
    } catch (err) {
      this.warn({ imageId: id, err: errorMessage(err) }, 'skipping a damaged image record in the shared store');
      return undefined;
    }
  }
}
