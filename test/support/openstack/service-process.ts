// A long-running service of a test fixture (RabbitMQ, the Cinder services): its own process group,
// so that what it forks (Erlang's beam, oslo.service's workers) goes with it; its output in a log
// file under the fixture's dir, whose tail a failed start quotes; stop() sends SIGTERM to the
// group and SIGKILL after 2 s (cinder-volume keeps retrying its broker on SIGTERM).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

const STOP_GRACE_MS = 2_000;

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited(): boolean;
  /** The last lines of its log. */
  logTail(lines?: number): Promise<string>;
  /** Resident memory of the group's processes now, bytes. */
  rss(): Promise<number>;
  /** A signal to the whole group (a fault test's SIGSTOP/SIGCONT: a service hung, not dead). */
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export function startServiceProcess(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, logPath: string): ServiceProcess {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, [...args], { env, detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  child.on('error', () => undefined);
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // the group is gone already
    }
  };
  return {
    name,
    child,
    logPath,
    exited,
    async logTail(lines = 20) {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text.trim().split('\n').slice(-lines).join('\n');
    },
    async rss() {
      return child.pid === undefined ? 0 : groupRss(child.pid);
    },
    signal: signalGroup,
    async stop() {
      if (child.pid === undefined) return;
      // a stopped group must run again to act on SIGTERM
      signalGroup('SIGCONT');
      const gone = exited() ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), STOP_GRACE_MS);
      await gone;
      clearTimeout(timer);
      // the leader may leave before its children: the rest of the group gets the same end
      await new Promise((r) => setTimeout(r, 100));
      signalGroup('SIGKILL');
    },
  };
}

/** The summed VmRSS of every process in the group `pgid`. */
async function groupRss(pgid: number): Promise<number> {
  let total = 0;
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pgrp is the 5th field, after the parenthesised command (which may hold spaces)
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kib !== undefined) total += Number(kib) * 1024;
  }
  return total;
}
