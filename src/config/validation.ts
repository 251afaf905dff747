// How a zod rejection reads, wherever one is turned into a message: every issue, each named by its
// path, so the operator or client learns every field to fix in one round. Imports only zod, so the
// workflow bundle can use it too.
import type { z, ZodError } from 'zod';

/** `path: message; path: message`; an issue on the whole value is named `root` (or by its message alone). */
export function issueText(error: ZodError, root = ''): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.') || root;
      return path === '' ? issue.message : `${path}: ${issue.message}`;
    })
    .join('; ');
}

/** The parsed value, or the error `invalid` makes of the issue text. */
export function parseOrThrow<S extends z.ZodTypeAny>(schema: S, value: unknown, invalid: (issues: string) => Error, root = ''): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(issueText(parsed.error, root));
  return parsed.data as z.output<S>;
}
