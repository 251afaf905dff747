// What a failed rbd/ceph command says: the tool, its exit code and the errno it reported, so that
// callers branch on "no such image" (ENOENT), "in use" (EBUSY) or "already there" (EEXIST) instead
// of matching message text.
import { constants } from 'node:os';

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, value]) => [value, name]));

// Outcomes a repeat of the same command cannot change.
const FINAL_ERRNOS = new Set(['ENOENT', 'EEXIST', 'EINVAL', 'EPERM', 'EACCES', 'ENOTEMPTY', 'EROFS', 'ENOSPC', 'EDQUOT', 'EOPNOTSUPP', 'ENOTSUP', 'ERANGE', 'ENAMETOOLONG']);

export class CephCommandError extends Error {
  override readonly name = 'CephCommandError';
  /** the errno the tool reported ("ENOENT"), or null when it named none */
  readonly errno: string | null;
  readonly retryable: boolean;
  constructor(
    readonly tool: 'rbd' | 'ceph',
    /** the command after the connection options ("snap create vms/x@s") */
    readonly command: string,
    /** null when the tool was killed or could not start */
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    const errno = errnoOf(stderr, exitCode);
    super(`${tool} ${command} failed (${exitCode === null ? 'killed' : `exit ${exitCode}`}${errno ? `, ${errno}` : ''}): ${lastLines(stderr)}`);
    this.errno = errno;
    this.retryable = errno === null || !FINAL_ERRNOS.has(errno);
  }

  get notFound(): boolean {
    return this.errno === 'ENOENT';
  }

  get busy(): boolean {
    return this.errno === 'EBUSY';
  }

  get exists(): boolean {
    return this.errno === 'EEXIST';
  }

  /** the tool was killed for writing more than the call's cap (tool-process's runToolOutput) */
  get stdoutExceeded(): boolean {
    return this.exitCode === null && this.stderr.startsWith('stdout exceeded');
  }
}

function lastLines(stderr: string): string {
  return stderr.trim().split('\n').slice(-3).join(' | ').slice(-1000);
}

/**
 * rbd writes "(2) No such file or directory", the ceph CLI "Error ENOENT: …"; both exit with the
 * errno. The text wins over the exit code, which is truncated to a byte.
 */
export function errnoOf(stderr: string, exitCode: number | null): string | null {
  const named = /\bError (E[A-Z0-9]+):/.exec(stderr);
  if (named?.[1] !== undefined && named[1] in constants.errno) return named[1];
  const numbered = [...stderr.matchAll(/\((\d{1,4})\) [A-Za-z]/g)].at(-1);
  if (numbered?.[1] !== undefined) {
    const name = ERRNO_NAMES.get(Number(numbered[1]));
    if (name !== undefined) return name;
  }
  if (exitCode !== null && exitCode > 1) return ERRNO_NAMES.get(exitCode) ?? null;
  return null;
}
