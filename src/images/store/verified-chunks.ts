// When verify jobs last found each chunk of a shared backend whole. An object has no time a reader
// may set (the local files keep theirs in their mtime, chunk-store.ts), so the service keeps them
// in a SQLite file of its data dir. A chunk found whole within the re-verify age is not read again,
// by a later job or by the same job for the next image that names it.
//
// The file is only a cache of work done: a stamp lost to a crash or a damaged file costs a re-read,
// never a missed check of a chunk older than the re-verify age. So it is not synced at every
// stamp, and a file SQLite cannot open is set aside and started anew.
import { mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { errorMessage } from '../../contract';

export class VerifiedChunks {
  private readonly stampedAt: Database.Statement<[Buffer], { at: number }>;
  private readonly upsert: Database.Statement<[Buffer, number]>;
  private readonly stampMany: (hashes: readonly Buffer[], at: number) => void;

  private constructor(private readonly db: Database.Database) {
    this.stampedAt = db.prepare('SELECT at FROM verified WHERE chunk = ?');
    this.upsert = db.prepare('INSERT INTO verified (chunk, at) VALUES (?, ?) ON CONFLICT (chunk) DO UPDATE SET at = excluded.at');
    this.stampMany = db.transaction((hashes: readonly Buffer[], at: number) => {
      for (const hash of hashes) this.upsert.run(hash, at);
    });
  }

  /** Opens (or makes) the file; one that cannot be read as stamps is renamed `<file>.damaged-<ms>` and replaced. */
  static open(file: string, warn: (details: Record<string, unknown>, message: string) => void): VerifiedChunks {
    mkdirSync(dirname(file), { recursive: true });
    try {
      return new VerifiedChunks(openDatabase(file));
    } catch (err) {
      const aside = `${file}.damaged-${Date.now()}`;
      warn({ err: errorMessage(err), file, aside }, 'verify stamps unreadable: set aside, every chunk is read again');
      renameSync(file, aside);
      return new VerifiedChunks(openDatabase(file));
    }
  }

  /** Whether a job found the chunk whole at `since` (ms) or later. */
  verifiedSince(hash: Buffer, since: number): boolean {
    const row = this.stampedAt.get(hash);
    return row !== undefined && row.at >= since;
  }

  /** The chunks were found whole at `at` (ms). */
  stamp(hashes: readonly Buffer[], at: number): void {
    if (hashes.length > 0) this.stampMany(hashes, at);
  }

  /** Forgets stamps older than `before` (ms): no job skips on them, so the file holds one re-verify age's worth. */
  prune(before: number): number {
    return this.db.prepare('DELETE FROM verified WHERE at < ?').run(before).changes;
  }

  close(): void {
    this.db.close();
  }
}

function openDatabase(file: string): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE IF NOT EXISTS verified (chunk BLOB PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID');
    // Reads the table once, so a damaged file fails here rather than in the middle of a job.
    db.prepare('SELECT count(*) AS n FROM verified').get();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
