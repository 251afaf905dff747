// Runs the instance-store contract (the same suite as on SQLite) against a real PostgreSQL server
// started for this file, and keeps a store working when the server ends its idle connections.
import { sql } from 'kysely';
import { Client } from 'pg';
import { openStoreDatabase } from '../../../src/store';
import { startTestPostgres, type TestPostgres } from '../../support/postgres';
import { describeInstanceStoreContract } from '../../unit/store/instance-store-contract';

let pg: TestPostgres | undefined;

describeInstanceStoreContract('PostgreSQL', {
  async setUp() {
    pg = await startTestPostgres();
    return { kind: 'postgres', connectionString: pg.connectionString, maxConnections: 20 };
  },
  async tearDown() {
    await pg?.stop();
  },
});

test('a store whose idle connections the server ends (a restart, an administrator) goes on with new ones', async () => {
  const server = await startTestPostgres();
  const db = openStoreDatabase({ kind: 'postgres', connectionString: server.connectionString, maxConnections: 4 });
  const admin = new Client({ connectionString: server.connectionString });
  try {
    await Promise.all(Array.from({ length: 4 }, () => sql`select pg_sleep(0.05)`.execute(db)));
    await admin.connect();
    const ended = await admin.query<{ n: string }>('select count(pg_terminate_backend(pid)) as n from pg_stat_activity where pid <> pg_backend_pid() and datname = current_database()');
    expect(Number(ended.rows[0]?.n)).toBeGreaterThanOrEqual(1);
    // The idle clients hear of it; unhandled, their 'error' events would end the process (and fail this test).
    await new Promise((r) => setTimeout(r, 300));
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(rows).toEqual([{ one: 1 }]);
  } finally {
    await admin.end().catch(() => undefined);
    await db.destroy();
    await server.stop();
  }
}, 120_000);
