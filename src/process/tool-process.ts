// The one way host tools (qemu-img, qemu-io, ...) run: child processes with argv only, never a
// shell, and typed failures; an aborted activity kills its tool instead of leaving it writing into
// the work dir.
import { spawn } from 'node:child_process';
import type { z } from 'zod';
import { issueText } from '../config/validation';
import { errorMessage } from '../contract';

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

  /** A full disk stays full; anything else (a tool killed with its worker, a busy file) may pass. */
  get retryable(): boolean {
    return !this.noSpace;
  }
}

/** The tool ran but wrote what we cannot read: the same tool answers the same way again. */
export class ToolOutputInvalid extends Error {
  override readonly name = 'ToolOutputInvalid';
  readonly retryable = false;
  constructor(
    readonly tool: string,
    detail: string,
  ) {
    super(`unexpected output from ${tool}: ${detail}`);
  }
}

export interface ToolOptions {
  signal?: AbortSignal;
  /** called with each chunk of stdout (qemu-img -p writes its percentage there) */
  onStdout?: (text: string) => void;
  /** working directory of the tool (apt-get download writes into it) */
  cwd?: string;
}

export interface ToolOutputOptions extends ToolOptions {
  /** cap on the stdout kept (default 16 MiB); a tool that writes more is killed */
  maxStdoutBytes?: number;
  /** exit codes that are answers rather than failures (`qemu-img compare`: 1 = the images differ); default [0] */
  okExitCodes?: readonly number[];
}

export interface ToolOutput {
  stdout: string;
  stderr: string;
  /** one of `okExitCodes` */
  exitCode: number;
}

export function runTool(tool: string, args: readonly string[], options: ToolOptions = {}): Promise<void> {
  return runToolOutput(tool, args, options).then(() => undefined);
}

/** Like runTool, and resolves with what the tool wrote and its exit code; any exit code not in `okExitCodes` is a ToolFailed. */
export function runToolOutput(tool: string, args: readonly string[], options: ToolOutputOptions = {}): Promise<ToolOutput> {
  const maxStdout = options.maxStdoutBytes ?? 16 * 1024 * 1024;
  const okExitCodes = options.okExitCodes ?? [0];
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
      else if (code !== null && okExitCodes.includes(code)) resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr, exitCode: code });
      else reject(new ToolFailed(tool, code, stderr));
    });
  });
}

/** A tool's JSON output (qemu-img info --output=json) checked against what we read from it. */
export function parseToolJson<S extends z.ZodTypeAny>(tool: string, schema: S, stdout: string): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (err) {
    throw new ToolOutputInvalid(tool, `not JSON (${errorMessage(err)})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new ToolOutputInvalid(tool, issueText(parsed.error));
  return parsed.data as z.output<S>;
}

/** Last "(NN.NN/100%)" in qemu-img -p output, as a fraction. */
export function parseQemuImgProgress(text: string): number | undefined {
  const matches = [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
  const last = matches.at(-1);
  return last ? Number(last[1]) / 100 : undefined;
}
