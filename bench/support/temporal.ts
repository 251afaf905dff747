// A Temporal dev server of the bench's own (free port, temp database), as the integration tests'
// global setup does, so a running `npm start` stack or a test run is never disturbed. Everything in
// the process that connects through TEMPORAL_ADDRESS reaches this one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startDevServer } from '../../src/temporal/dev-server';
import { freePort } from '../../test/support/free-port';
import { onCleanup } from './cleanup';

let runtimeInstalled = false;

export async function startBenchTemporal(): Promise<string> {
  if (!runtimeInstalled) {
    // worker state changes at INFO would drown the tables; warnings and errors still show
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const dir = await mkdtemp(join(tmpdir(), 'snap-bench-temporal-'));
  onCleanup('temporal dir', () => rm(dir, { recursive: true, force: true }));
  const server = await startDevServer({ port: await freePort(), dbFile: join(dir, 'temporal.db') });
  onCleanup('temporal dev server', () => server.stop());
  process.env.TEMPORAL_ADDRESS = server.address;
  return server.address;
}
