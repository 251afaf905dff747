// Real QEMU exports for the NBD client's tests: images made with qemu-img and qemu-io, served by
// qemu-nbd on a unix socket in a private temp dir. Every tool runs from an argv array, no shell.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function qemuImg(...args: string[]): Promise<void> {
  await run('qemu-img', args);
}

/** Runs qemu-io commands (`write -P 0xab 1M 64k`, …) against a qcow2 image. */
export async function qemuIo(image: string, ...commands: string[]): Promise<void> {
  await run('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), image]);
}

export interface QemuNbd {
  socketPath: string;
  process: ChildProcess;
  /** resolves with the exit code (or the signal) once qemu-nbd has gone */
  exited: Promise<number | NodeJS.Signals>;
  kill(): Promise<void>;
}

export interface QemuNbdOptions {
  exportName: string;
  persistent?: boolean;
  bitmap?: string;
}

/** Starts `qemu-nbd --read-only` on `<dir>/<name>.sock` and waits for the socket to appear. */
export async function startQemuNbd(dir: string, name: string, image: string, o: QemuNbdOptions): Promise<QemuNbd> {
  const socketPath = path.join(dir, `${name}.sock`);
  const args = ['--read-only', `--socket=${socketPath}`, '--format=qcow2', '--shared=8', `--export-name=${o.exportName}`];
  if (o.persistent !== false) args.push('--persistent');
  if (o.bitmap) args.push(`--bitmap=${o.bitmap}`);
  args.push(image);
  const child = spawn('qemu-nbd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await access(socketPath);
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`qemu-nbd did not come up on ${socketPath}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    socketPath,
    process: child,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
