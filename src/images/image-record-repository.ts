// Image records as one JSON file per image under <dataDir>/records. All records are held in memory
// (the service owns its data dir exclusively) and every change is written through atomically.
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_SUFFIX, writeFileAtomic } from '../fs/atomic-file';
import { ImageIdSchema, ImageRecordSchema, type ImageRecord } from './image-record';

export interface RepositoryWarning {
  (details: Record<string, unknown>, message: string): void;
}

export class ImageRecordRepository {
  private readonly records = new Map<string, ImageRecord>();
  /** Per-image write chains keep successive writes of one record in order. */
  private readonly writes = new Map<string, Promise<void>>();

  private constructor(private readonly dir: string) {}

  static async load(dir: string, warn: RepositoryWarning): Promise<ImageRecordRepository> {
    await mkdir(dir, { recursive: true });
    const repo = new ImageRecordRepository(dir);
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
   * Replaces the in-memory record immediately (so status checks made right after see it) and
   * resolves once the latest version of that record is durable on disk.
   */
  async put(record: ImageRecord): Promise<void> {
    const id = ImageIdSchema.parse(record.id);
    this.records.set(id, record);
    await this.inOrder(id, async () => {
      const latest = this.records.get(id);
      if (latest !== undefined) await writeFileAtomic(this.pathFor(id), JSON.stringify(latest));
    });
  }

  /** Forgets the record now and removes its file after the writes already queued for it. */
  async remove(id: string): Promise<void> {
    const valid = ImageIdSchema.parse(id);
    this.records.delete(valid);
    await this.inOrder(valid, () => rm(this.pathFor(valid), { force: true }));
  }

  /** Runs `step` after every step queued before for the same record. */
  private async inOrder(id: string, step: () => Promise<void>): Promise<void> {
    const previous = this.writes.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(step);
    this.writes.set(id, next);
    try {
      await next;
    } finally {
      if (this.writes.get(id) === next) this.writes.delete(id);
    }
  }

  /** Waits for every pending write (used at shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes.values()]);
  }

  private pathFor(id: string): string {
    return join(this.dir, `${id}.json`);
  }
}
