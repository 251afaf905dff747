// The stack's services as child processes, each with its output prefixed by its name, stopped in
// reverse order with SIGTERM (then SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface RunningService {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

export function startService(spec: ServiceSpec, cwd: string, onExit: (name: string, code: number | null) => void): RunningService {
  // stdin stays a pipe: our TypeScript services exit when it closes, so a killed orchestrator leaves none behind.
  const child = spawn(spec.command, spec.args, { cwd, env: { ...process.env, ...spec.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${spec.name}] ${line}\n`));
  }
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      onExit(spec.name, code);
      resolve(code);
    }),
  );
  return { name: spec.name, child, exited };
}

export async function stopServices(services: readonly RunningService[], graceMs = 15_000): Promise<void> {
  for (const service of [...services].reverse()) {
    if (service.child.exitCode !== null || service.child.signalCode !== null) continue;
    service.child.kill('SIGTERM');
    const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
    await service.exited;
    clearTimeout(timer);
  }
}
