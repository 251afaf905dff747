import { rmSync } from 'node:fs';
import type { DevServer } from '../../src/temporal/dev-server';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __temporalDevServer?: DevServer }).__temporalDevServer?.stop();
  const dir = process.env.SNAP_TEST_TEMPORAL_DIR;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
