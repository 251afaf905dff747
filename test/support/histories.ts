// Keeps the histories of real runs under test/histories/ so that the replay test can prove the
// workflow code still produces the same commands. Written only when SNAP_RECORD_HISTORIES=1,
// never in a normal test run. Exported with the Temporal CLI, the documented way to capture a
// history for replay.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { loadTemporalSettings } from '../../src/temporal/connection-config';
import { temporalCliPath } from '../../src/temporal/dev-server';

export const HISTORIES_DIR = join(__dirname, '..', 'histories');

export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.SNAP_RECORD_HISTORIES !== '1') return;
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`history name ${name} must be kebab-case`);
  const { address, namespace } = loadTemporalSettings();
  const { stdout } = await promisify(execFile)(
    temporalCliPath(),
    ['workflow', 'show', '--address', address, '--namespace', namespace, '--workflow-id', handle.workflowId, '--output', 'json'],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  // Stack traces name the recording machine's paths and play no part in replay.
  const scrubbed = stdout.replace(/"stackTrace": "(?:[^"\\]|\\.)*"/g, '"stackTrace": ""');
  await writeFile(join(HISTORIES_DIR, `${name}.json`), scrubbed);
}
