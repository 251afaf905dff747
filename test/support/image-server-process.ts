// Runs the standalone image service (server-main.ts) as its own process, for tests that kill it
// with SIGKILL and start it again on the same data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { RecoveryReport } from '../../src/images/service';

export const repoRoot = resolve(__dirname, '../..');

export interface ImageServerProcess {
  proc: ChildProcess;
  url: string;
  recovery: RecoveryReport;
}

/** Starts server-main.ts and waits for its "listening" log line. */
export function startServerProcess(dataDir: string, env: Record<string, string> = {}): Promise<ImageServerProcess> {
  // A bench run under --cpu-prof profiles the service it starts too (bench:profile reads both).
  const profiling = process.execArgv.filter((a) => a.startsWith('--cpu-prof'));
  const proc = spawn(process.execPath, [...profiling, '--import', 'tsx', join('src', 'images', 'service', 'server-main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, SNAP_IMAGE_PORT: '0', SNAP_IMAGE_DIR: dataDir, SNAP_IMAGE_AUTH: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('image service listening')) continue;
        const parsed = JSON.parse(line) as { url: string; recovery: RecoveryReport };
        resolvePromise({ proc, url: parsed.url, recovery: parsed.recovery });
      }
    });
    proc.once('exit', (code) => reject(new Error(`image service exited early (${String(code)}): ${err}${out}`)));
  });
}

export function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((r) => proc.once('exit', (code) => r(code)));
}

/** Stops the service as an operator does (SIGTERM: it closes and exits, writing a profile it was asked for), SIGKILL after `graceMs`. */
export async function stopServerProcess(proc: ChildProcess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  proc.kill('SIGTERM');
  await exited(proc);
  clearTimeout(timer);
}

/** SIGKILLs every process still running (afterEach). */
export async function killAll(children: ChildProcess[]): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await exited(c);
    }
  }
}
