// Builds the Kysely instance for the configured dialect. Everything above this file is
// dialect-agnostic.
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { Pool } from 'pg';
import { StoreConfigSchema, type StoreConfigInput } from './store-config';
import type { StoreDatabase } from './store-schema';

export type StoreDb = Kysely<StoreDatabase>;

export function openStoreDatabase(input: StoreConfigInput): StoreDb {
  const config = StoreConfigSchema.parse(input);
  if (config.kind === 'sqlite') {
    const sqlite = new Database(config.path);
    // WAL lets readers in other processes proceed during a write; busy_timeout makes a second
    // writer wait for the lock instead of failing with SQLITE_BUSY.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    return new Kysely<StoreDatabase>({ dialect: new SqliteDialect({ database: sqlite }) });
  }
  const pool = new Pool({ connectionString: config.connectionString, max: config.maxConnections });
  // An idle connection that dies (the server restarted or stopped, an administrator ended it) is
  // dropped by the pool, and the next query opens another; without a listener its 'error' event
  // would end the process.
  pool.on('error', () => undefined);
  return new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) });
}
