// The text of anything thrown. Duck-typed on purpose: errors from node:fs, worker threads or vm
// contexts may come from another realm, where `instanceof Error` is false.

export function errorMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}
