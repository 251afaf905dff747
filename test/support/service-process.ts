// One of our services (`src/.../*-main.ts`) as its own OS process, for crash and multi-node tests:
// started with `node --import tsx`, readiness by a probe, kill -9 of its whole process group, and
// its output kept in memory for the failure message. Argv arrays only.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '../..');

export interface ServiceSpec {
  name: string;
  /** entry point relative to the repository, e.g. src/api/main.ts */
  entry: string;
  env: NodeJS.ProcessEnv;
  /** resolves true once the service answers (polled every 100 ms) */
  ready: (output: string) => Promise<boolean> | boolean;
  readyTimeoutMs?: number;
}

export class ServiceProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** everything the current and earlier incarnations printed (bounded) */
  output = '';

  constructor(readonly spec: ServiceSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    // detached: its own process group, so kill -9 takes anything it spawned too.
    const child = spawn(process.execPath, ['--import', 'tsx', this.spec.entry], { cwd: REPO_ROOT, env: this.spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const append = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-200_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (!this.running) throw new Error(`${this.spec.name} exited during start:\n${this.output.slice(-4000)}`);
      if (await Promise.resolve(this.spec.ready(this.output)).catch(() => false)) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.spec.name} not ready in time:\n${this.output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** kill -9 of the process group; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === null || !this.running || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    await this.exited;
  }
}

/** Readiness probe: any HTTP answer from `url`. */
export async function answersHttp(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}
