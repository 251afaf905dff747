// Runs benches one after another, each in its own process (tsx), so one bench's workers, guests
// and servers are all gone before the next one measures. Ctrl-C is passed on to the running
// bench, which cleans up after itself; the sequence then stops.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { printTable, seconds, type Row } from './table';

export interface BenchStep {
  name: string;
  /** path relative to bench/ */
  file: string;
  args?: string[];
}

function runOne(step: BenchStep, onChild: (kill: (signal: NodeJS.Signals) => void) => void): Promise<number> {
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), join(__dirname, '..', step.file), ...(step.args ?? [])], { stdio: 'inherit' });
  onChild((signal) => child.kill(signal));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export async function runSequence(title: string, steps: readonly BenchStep[]): Promise<void> {
  let current: ((signal: NodeJS.Signals) => void) | undefined;
  let interrupted = false;
  const forward = (signal: NodeJS.Signals): void => {
    interrupted = true;
    current?.(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const rows: Row[] = [];
  for (const step of steps) {
    if (interrupted) break;
    process.stdout.write(`\n## ${step.name} (bench/${step.file})\n`);
    const started = Date.now();
    const code = await runOne(step, (kill) => (current = kill));
    current = undefined;
    rows.push({ bench: step.name, 'exit code': String(code), 'wall s': seconds(Date.now() - started) });
  }
  printTable(title, rows);
  process.exitCode = interrupted ? 130 : rows.some((r) => r['exit code'] !== '0') ? 1 : 0;
}
