// The API and the control worker open the same SQLite file at the same moment when the stack
// starts; SQLite has no migration lock, so both may try the first migration.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InstanceStore, STORE_MIGRATION_NAMES, appliedStoreMigrations, openStoreDatabase } from '../../../src/store';

describe('opening a fresh store from several connections at once', () => {
  it('migrates exactly once and every opener succeeds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'store-race-'));
    try {
      for (let round = 0; round < 5; round++) {
        const config = { kind: 'sqlite' as const, path: join(dir, `race-${round}.db`) };
        const stores = await Promise.all([1, 2, 3, 4].map(() => InstanceStore.open(config)));
        const db = openStoreDatabase(config);
        expect(await appliedStoreMigrations(db)).toEqual([...STORE_MIGRATION_NAMES]);
        await db.destroy();
        await Promise.all(stores.map((s) => s.close()));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
