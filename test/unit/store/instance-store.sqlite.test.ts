// Runs the instance-store contract against a real SQLite file (the embedded default).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeInstanceStoreContract } from './instance-store-contract';

let dir: string | undefined;

describeInstanceStoreContract('SQLite file', {
  async setUp() {
    dir = await mkdtemp(join(tmpdir(), 'store-sqlite-'));
    return { kind: 'sqlite', path: join(dir, 'instances.db') };
  },
  async tearDown() {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  },
});
