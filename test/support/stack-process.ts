// `npm start`'s orchestrator as a child process on free ports and a temporary data dir, for the
// test that checks the stack comes up, takes a snapshot and leaves no process behind on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port';

const ROOT = join(__dirname, '..', '..');

export interface StackProcess {
  child: ChildProcess;
  output: () => string;
  ports: { temporal: number; ui: number; api: number; image: number; controlMetrics: number; hostMetrics: number };
  /** pids of the orchestrator's direct children while the stack is up */
  childPids(): number[];
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Ctrl-C: SIGINT to the orchestrator; resolves with its exit code */
  interrupt(): Promise<number | null>;
}

export function childPidsOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(join('/proc', entry, 'status'), 'utf8');
      if (new RegExp(`^PPid:\\s+${parent}$`, 'm').test(status)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** A process that still runs; a zombie waiting for the init process to reap it does not. */
export function alive(pid: number): boolean {
  try {
    const state = /^State:\s+(\S)/m.exec(readFileSync(join('/proc', String(pid), 'status'), 'utf8'))?.[1];
    return state !== undefined && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function startStackProcess(dataDir: string, env: Record<string, string> = {}): Promise<StackProcess> {
  const ports = { temporal: await freePort(), ui: await freePort(), api: await freePort(), image: await freePort(), controlMetrics: await freePort(), hostMetrics: await freePort() };
  const child = spawn(process.execPath, ['--import', 'tsx', join('src', 'stack', 'start.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: '',
      SNAP_DATA_DIR: dataDir,
      SNAP_TEMPORAL_PORT: String(ports.temporal),
      SNAP_TEMPORAL_UI_PORT: String(ports.ui),
      SNAP_API_PORT: String(ports.api),
      SNAP_IMAGE_PORT: String(ports.image),
      SNAP_CONTROL_METRICS_PORT: String(ports.controlMetrics),
      SNAP_HOST_METRICS_PORT: String(ports.hostMetrics),
      SNAP_INVENTORY_INTERVAL_S: '5',
      SNAP_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    ports,
    childPids: () => childPidsOf(child.pid ?? -1),
    async waitForOutput(pattern, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (child.exitCode !== null) throw new Error(`the stack exited (${child.exitCode}):\n${out}`);
        if (Date.now() > deadline) throw new Error(`no ${String(pattern)} within ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async interrupt() {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}
