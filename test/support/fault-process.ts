// One service of the fault stack as a real OS process that a test can kill -9 and start again.
// Argv arrays only (no shell). Each start gets its own process group, so a kill also takes the
// tools it spawned (qemu-img), as a host agent's crash under a service manager would.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** a log line that says the service is ready (e.g. "polling"); omitted: `ready` decides alone */
  readyLine?: RegExp;
  /** an extra readiness probe (e.g. a port that answers) */
  ready?: () => Promise<boolean>;
  /** appended with every line the process writes, for post-mortems */
  logFile: string;
  readyTimeoutMs?: number;
}

export class FaultProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private log: WriteStream;

  constructor(private readonly spec: ProcessSpec) {
    this.log = createWriteStream(spec.logFile, { flags: 'a' });
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once it reports ready; throws (and kills it) after the deadline. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    // stdin stays a pipe: with SNAP_EXIT_WITH_PARENT=1 our services exit when the test process dies.
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let sawLine = this.spec.readyLine === undefined;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.log.write(`[${this.spec.name} ${child.pid ?? '?'}] ${line}\n`);
        if (this.spec.readyLine?.test(line)) sawLine = true;
      });
    }
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 90_000);
    for (;;) {
      if (!this.running) throw new Error(`${this.spec.name} exited during start (see ${this.spec.logFile})`);
      if (sawLine && (this.spec.ready === undefined || (await this.spec.ready()))) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.spec.name} not ready within ${this.spec.readyTimeoutMs ?? 90_000} ms (see ${this.spec.logFile})`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** kill -9 of the whole process group, then waits until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running || child.pid === undefined) return;
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

  /** Final stop: SIGKILL too (nothing to drain in a test), and the log closed. */
  async close(): Promise<void> {
    await this.kill();
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}
