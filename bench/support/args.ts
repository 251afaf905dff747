// `--name value` pairs from argv, validated by the bench's zod schema (a typo stops the bench).
import type { z } from 'zod';

export function parseArgs<S extends z.ZodTypeAny>(schema: S, argv: readonly string[] = process.argv.slice(2)): z.infer<S> {
  const raw: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([\w-]+)$/.exec(argv[i] ?? '');
    if (!m?.[1] || argv[i + 1] === undefined) throw new Error(`unexpected argument ${JSON.stringify(argv[i])} (expected --name value)`);
    raw[m[1]] = argv[++i] ?? '';
  }
  return schema.parse(raw) as z.infer<S>;
}
