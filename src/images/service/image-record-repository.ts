// Image records as one JSON file per image under <dataDir>/records. All records are held in memory
// (the service owns its data dir exclusively); a change is written atomically first and reaches
// memory only once it is durable, then goes to the mirror (a shared store's bucket), if any.
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_SUFFIX, writeFileAtomic } from '../../fs/atomic-file';
import { ImageIdSchema, ImageRecordSchema, type ImageRecord } from '../client/image-record';

export interface RepositoryWarning {
  (details: Record<string, unknown>, message: string): void;
}

/** Follows every durable change (a shared store's copy of the records, shared-records.ts). */
export interface RecordMirror {
  written(record: ImageRecord): Promise<void>;
  removed(id: string): Promise<void>;
}

export class ImageRecordRepository {
  private readonly records = new Map<string, ImageRecord>();
  /** Per-image write chains keep successive writes of one record in order. */
  private readonly writes = new Map<string, Promise<void>>();

  private constructor(
    private readonly dir: string,
    private readonly mirror: RecordMirror | undefined,
  ) {}

  static async load(dir: string, warn: RepositoryWarning, mirror?: RecordMirror): Promise<ImageRecordRepository> {
    await mkdir(dir, { recursive: true });
    const repo = new ImageRecordRepository(dir, mirror);
    for (const entry of await readdir(dir)) {
      if (entry.endsWith(TEMP_SUFFIX)) {
        // An interrupted atomic write: the previous version (if any) is still intact.
        await rm(join(dir, entry), { force: true });
        continue;
      }
      if (!entry.endsWith('.json')) continue;
      const id = entry.slice(0, -'.json'.length);
      try {
        const record = ImageRecordSchema.parse(JSON.parse(await readFile(join(dir, entry), 'utf8')));
        if (record.id !== id) throw new Error(`record id ${record.id} does not match file name`);
        repo.records.set(id, record);
      } catch (err) {
        warn({ file: entry, err }, 'skipping unreadable image record');
      }
    }
    return repo;
  }

  get(id: string): ImageRecord | undefined {
    return this.records.get(id);
  }

  all(): ImageRecord[] {
    return [...this.records.values()];
  }

  /**
   * Changes one record: `change` is given the current record (undefined when there is none) and
   * returns the next one, or throws to change nothing. Changes of one record run one after the
   * other, each seeing the one before; the new version is written durably (temp file, fsync,
   * rename) before anyone can read it here, so a failed write (ENOSPC, EIO) leaves the previous
   * version, in memory as on disk.
   */
  update(id: string, change: (current: ImageRecord | undefined) => ImageRecord): Promise<ImageRecord> {
    const key = ImageIdSchema.parse(id);
    return this.inOrder(key, async () => {
      const record = change(this.records.get(key));
      if (record.id !== key) throw new Error(`record ${record.id} cannot be stored as ${key}`);
      await writeFileAtomic(this.pathFor(key), JSON.stringify(record));
      this.records.set(key, record);
      await this.mirror?.written(record);
      return record;
    });
  }

  /** Stores `record` as it is (repairs at start-up, where nothing else runs). */
  put(record: ImageRecord): Promise<ImageRecord> {
    return this.update(record.id, () => record);
  }

  /** Removes the record's file after the changes already queued for it, then forgets it. */
  remove(id: string): Promise<void> {
    const key = ImageIdSchema.parse(id);
    return this.inOrder(key, async () => {
      await rm(this.pathFor(key), { force: true });
      this.records.delete(key);
      await this.mirror?.removed(key);
    });
  }

  /** Runs `step` after every step queued before for the same record; a failed step does not stop the next. */
  private inOrder<T>(key: string, step: () => Promise<T>): Promise<T> {
    const previous = this.writes.get(key) ?? Promise.resolve();
    const next = previous.then(step);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.writes.set(key, settled);
    void settled.then(() => {
      if (this.writes.get(key) === settled) this.writes.delete(key);
    });
    return next;
  }

  /** Waits for every pending write (used at shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes.values()]);
  }

  private pathFor(id: string): string {
    return join(this.dir, `${id}.json`);
  }
}
