// The ceph room's transport: the `rbd` and `ceph` command-line tools, run with argv arrays through
// the host's tool runner (no shell), always against an explicit cluster config and cephx user, and
// always with a deadline: a client that cannot reach the monitors otherwise waits for ever.
import path from 'node:path';
import { z } from 'zod';
import { assertSafePath } from '../fs/safe-path';
import { runToolOutput, ToolFailed } from '../process/tool-process';
import { CephCommandError } from './errors';
import { checkCephUser } from './names';

/** How to reach a cluster: Nova's images_rbd_ceph_conf and rbd_user (and the keyring, when not in the conf). */
export interface CephConnection {
  /** absolute path of the cluster's ceph.conf */
  confPath: string;
  /** the cephx id without "client." */
  user: string;
  /** absolute path of the user's keyring; absent: the conf's `keyring` setting */
  keyringPath?: string;
  /** per command; default 60 s */
  timeoutMs?: number;
  /** absolute directory holding the `rbd` and `ceph` binaries; default: found on PATH */
  toolDir?: string;
}

export const CephConnectionSchema = z.object({
  confPath: z.string().min(1),
  user: z.string().min(1),
  keyringPath: z.string().min(1).optional(),
  timeoutMs: z.number().int().min(100).max(3_600_000).optional(),
  toolDir: z.string().min(1).optional(),
});

export type CephTool = 'rbd' | 'ceph';

/** The options every command starts with; paths and id are checked here. */
export function connectionArgs(conn: CephConnection): string[] {
  const args = ['--conf', assertSafePath(conn.confPath), '--id', checkCephUser(conn.user)];
  if (conn.keyringPath !== undefined) args.push('--keyring', assertSafePath(conn.keyringPath));
  return args;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** cap on the answer's bytes (default: the tool runner's); past it the tool is killed (CephCommandError.stdoutExceeded) */
  maxStdoutBytes?: number;
}

/** Runs `tool <connection> <args>` and returns its stdout; a failure is a CephCommandError. */
export async function runCeph(conn: CephConnection, tool: CephTool, args: readonly string[], options: CallOptions = {}): Promise<string> {
  const timeoutMs = conn.timeoutMs ?? 60_000;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const argv = [...connectionArgs(conn), ...args];
  try {
    const binary = conn.toolDir === undefined ? tool : path.join(assertSafePath(conn.toolDir), tool);
    return (await runToolOutput(binary, argv, { signal, ...(options.maxStdoutBytes !== undefined ? { maxStdoutBytes: options.maxStdoutBytes } : {}) })).stdout;
  } catch (err) {
    const command = args.join(' ');
    if (err instanceof ToolFailed) throw new CephCommandError(tool, command, err.exitCode, err.stderr);
    if (deadline.aborted && !options.signal?.aborted) throw new CephCommandError(tool, command, null, `timed out after ${timeoutMs} ms`);
    throw err;
  }
}
