// The one spelling of a host path that may reach argv, domain XML or a file operation: absolute,
// canonical, and of characters that need no quoting anywhere.
import path from 'node:path';

/** Absolute, normalised, and limited to characters that are safe in argv and in domain XML. */
const SAFE_PATH_RE = /^\/[A-Za-z0-9._/-]*$/;

export class HostPathError extends Error {
  override readonly name = 'HostPathError';
  /** the path is refused by its spelling: the same path is refused again */
  readonly retryable = false;
}

export function assertSafePath(p: string): string {
  if (typeof p !== 'string' || !SAFE_PATH_RE.test(p) || path.normalize(p) !== p || p.split('/').includes('..') || p.length > 4000) {
    throw new HostPathError(`unsafe or non-canonical path: ${JSON.stringify(p)}`);
  }
  return p;
}
