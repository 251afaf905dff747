// Which database backs the instance store. SQLite (a file) is the embedded default; PostgreSQL is
// for deployments where several processes or hosts share the store.
import { z } from 'zod';

export const SqliteStoreConfigSchema = z.object({
  kind: z.literal('sqlite'),
  /** Database file path; ':memory:' is refused because every process must see the same rows. */
  path: z
    .string()
    .min(1)
    .refine((p) => p !== ':memory:', { message: 'the instance store needs a real file, not :memory:' }),
});

export const PostgresStoreConfigSchema = z.object({
  kind: z.literal('postgres'),
  connectionString: z.string().min(1),
  /** Upper bound on pooled connections; CAS correctness does not depend on it. */
  maxConnections: z.number().int().positive().max(100).default(10),
});

export const StoreConfigSchema = z.discriminatedUnion('kind', [SqliteStoreConfigSchema, PostgresStoreConfigSchema]);

export type StoreConfig = z.infer<typeof StoreConfigSchema>;
export type StoreConfigInput = z.input<typeof StoreConfigSchema>;
