// One of the stack's services as a real OS process that a test can kill -9 and start again (fault,
// crash and multi-node tests). Argv arrays only. Each start gets its own process group, so a kill
// also takes the tools it spawned (qemu-img), as a crash under a service manager would.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const REPO_ROOT = resolve(__dirname, '../..');

export interface TestProcessSpec {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** a line this incarnation must print before it counts as ready (e.g. "polling") */
  readyLine?: RegExp;
  /** an extra readiness probe (e.g. a port that answers), given this incarnation's output */
  ready?: (output: string) => Promise<boolean> | boolean;
  readyTimeoutMs?: number;
  /** every line is also appended here, for post-mortems */
  logFile?: string;
}

/** command/args/cwd of a TypeScript entry point of ours, e.g. `src/api/main.ts`. */
export function tsxEntry(entry: string): Pick<TestProcessSpec, 'command' | 'args' | 'cwd'> {
  return { command: process.execPath, args: ['--import', 'tsx', entry], cwd: REPO_ROOT };
}

export class TestProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** what the current incarnation printed (bounded), for readiness and failure messages */
  output = '';

  constructor(readonly spec: TestProcessSpec) {}

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once it is ready; kills it and throws after the deadline. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    // stdin stays a pipe: with SNAP_EXIT_WITH_PARENT=1 our services exit when the test process dies.
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.output = '';
    this.exited = new Promise((r) => child.once('exit', () => r()));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.output = `${this.output}${line}\n`.slice(-200_000);
        if (this.spec.logFile) appendFileSync(this.spec.logFile, `[${this.spec.name} ${child.pid ?? '?'}] ${line}\n`);
      });
    }
    const timeoutMs = this.spec.readyTimeoutMs ?? 90_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.spec.name} exited during start:\n${this.output.slice(-4000)}`);
      const lineSeen = this.spec.readyLine === undefined || this.spec.readyLine.test(this.output);
      if (lineSeen && (this.spec.ready === undefined || (await Promise.resolve(this.spec.ready(this.output)).catch(() => false)))) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.spec.name} not ready within ${timeoutMs} ms:\n${this.output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** kill -9 of the whole process group; resolves once the process is gone. */
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

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Final stop: SIGKILL too, nothing to drain in a test. */
  async close(): Promise<void> {
    await this.kill();
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

/** Command lines of live processes that mention `text` (a fixture's temp dir): what a stop left running. */
export async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return found;
}
