// The text of anything thrown. Duck-typed on purpose: errors from node:fs, worker threads or vm
// contexts may come from another realm, where `instanceof Error` is false.

export function errorMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

/** The stack of anything thrown (for a process's last words), its message when it has none. */
export function errorStack(err: unknown): string {
  const stack = (err as { stack?: unknown } | null)?.stack;
  return typeof stack === 'string' ? stack : errorMessage(err);
}

/** The errno code of a node:fs or socket failure (ENOENT, ENOSPC, …), undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
