// Runs the instance-store contract (the same suite as on SQLite) against a real PostgreSQL server
// started for this file.
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
