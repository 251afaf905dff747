// The stack's services as supervised child processes: each one's output is prefixed by its name; a
// service that dies is logged and started again with backoff, so the stack goes on (and a snapshot
// in flight resumes on the new worker); Ctrl-C stops them in reverse order with SIGTERM, then
// SIGKILL after a grace period.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** a run this long counts as healthy: the next death starts the backoff over */
  healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000, healthyAfterMs: 60_000 };

export type Say = (line: string) => void;

/** 1 s, 2 s, 4 s … up to the cap, for deaths that follow each other without a healthy run between. */
export function restartDelay(policy: BackoffPolicy, consecutiveDeaths: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, consecutiveDeaths - 1));
}

export class SupervisedService {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private consecutiveDeaths = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  restarts = 0;

  constructor(
    readonly spec: ServiceSpec,
    private readonly cwd: string,
    private readonly say: Say,
    private readonly backoff: BackoffPolicy = DEFAULT_BACKOFF,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    // stdin stays a pipe: our TypeScript services exit when it closes, so a killed orchestrator leaves none behind.
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.cwd, env: { ...process.env, ...this.spec.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    const startedAt = Date.now();
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.say(`[${this.spec.name}] ${line}`));
    }
    this.say(`[stack] ${this.spec.name} started (pid ${child.pid ?? '?'}${this.restarts > 0 ? `, restart ${this.restarts}` : ''})`);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        resolve();
        if (this.stopping) return;
        this.consecutiveDeaths = Date.now() - startedAt >= this.backoff.healthyAfterMs ? 1 : this.consecutiveDeaths + 1;
        const delay = restartDelay(this.backoff, this.consecutiveDeaths);
        this.say(`[stack] ${this.spec.name} exited unexpectedly (${signal ?? `code ${String(code)}`}); restarting in ${(delay / 1000).toFixed(0)} s`);
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          if (this.stopping) return;
          this.restarts++;
          this.start();
        }, delay);
      });
    });
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export async function stopServices(services: readonly SupervisedService[], graceMs = 15_000): Promise<void> {
  for (const service of [...services].reverse()) await service.stop(graceMs);
}
