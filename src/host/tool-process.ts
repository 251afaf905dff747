// Long-running host tools (qemu-img convert) as cancellable child processes: argv only, never a
// shell; an aborted activity kills its tool instead of leaving it writing into the work dir.
import { spawn } from 'node:child_process';

export class ToolFailed extends Error {
  override readonly name = 'ToolFailed';
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${tool} failed (${exitCode === null ? 'killed' : `exit ${exitCode}`}): ${stderr.trim().slice(-2000)}`);
  }

  /** ENOSPC shows up in qemu-img's message, not in an errno we can see. */
  get noSpace(): boolean {
    return /No space left on device/i.test(this.stderr);
  }
}

export interface ToolOptions {
  signal?: AbortSignal;
  /** called with each chunk of stdout (qemu-img -p writes its percentage there) */
  onStdout?: (text: string) => void;
  /** working directory of the tool (apt-get download writes into it) */
  cwd?: string;
}

export function runTool(tool: string, args: readonly string[], options: ToolOptions = {}): Promise<void> {
  return runToolOutput(tool, args, options).then(() => undefined);
}

/** Like runTool, and resolves with what the tool wrote to stdout (capped at `maxStdoutBytes`, default 16 MiB). */
export function runToolOutput(tool: string, args: readonly string[], options: ToolOptions & { maxStdoutBytes?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  const maxStdout = options.maxStdoutBytes ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted'));
      return;
    }
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd });
    let stderr = '';
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      options.onStdout?.(chunk.toString());
      stdoutBytes += chunk.length;
      if (stdoutBytes <= maxStdout) stdout.push(chunk);
      else child.kill('SIGKILL');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-16_384);
    });
    child.once('error', (err) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new ToolFailed(tool, null, err.message));
    });
    child.once('close', (code) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) reject(options.signal.reason instanceof Error ? options.signal.reason : new Error(`${tool} aborted`));
      else if (stdoutBytes > maxStdout) reject(new ToolFailed(tool, code, `stdout exceeded ${maxStdout} bytes`));
      else if (code === 0) resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr });
      else reject(new ToolFailed(tool, code, stderr));
    });
  });
}

/** Last "(NN.NN/100%)" in qemu-img -p output, as a fraction. */
export function parseQemuImgProgress(text: string): number | undefined {
  const matches = [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
  const last = matches.at(-1);
  return last ? Number(last[1]) / 100 : undefined;
}
