import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server';
import { freePort } from './free-port';

// One real Temporal dev server for the whole integration run, on its own ports and database so a
// running `npm start` stack is never disturbed. Tests reach it through TEMPORAL_ADDRESS.
export default async function globalSetup(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'snap-temporal-'));
  const server = await startDevServer({ port: await freePort(), dbFile: join(dir, 'temporal.db') });
  process.env.TEMPORAL_ADDRESS = server.address;
  process.env.SNAP_TEST_TEMPORAL_DIR = dir;
  (globalThis as { __temporalDevServer?: DevServer }).__temporalDevServer = server;
}
