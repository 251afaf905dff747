// The token table and the environment that locates it, validated with zod because both come from
// outside the process (a file an operator may hand-edit, and environment variables).
import { z } from 'zod';
import { DataDirSchema } from '../config/data-dir';

/** `service` is the workers' role: a token with it is the snapshot service and nothing else. */
export const ROLES = ['member', 'admin', 'service'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

/** Long enough that guessing is hopeless; printable so it survives shells and HTTP headers. */
export const TokenSchema = z
  .string()
  .min(16, 'tokens have at least 16 characters')
  .max(256)
  .regex(/^[A-Za-z0-9._~+/=-]+$/, 'tokens use URL-safe characters only');

export const ProjectIdSchema = z.string().min(1).max(255).regex(/^[A-Za-z0-9._-]+$/, 'project ids use letters, digits, dot, dash, underscore');

export const TokenEntrySchema = z
  .object({
    token: TokenSchema,
    projectId: ProjectIdSchema,
    roles: z.array(RoleSchema).min(1),
    /** Free-form label shown when the tokens are printed. */
    name: z.string().max(255).optional(),
  })
  .strict()
  .refine((t) => !t.roles.includes('service') || t.roles.length === 1, { message: "a 'service' token has that role only (the workers' identity is no user)" });
export type TokenEntry = z.infer<typeof TokenEntrySchema>;

export const TokenConfigSchema = z
  .object({ tokens: z.array(TokenEntrySchema).min(1) })
  .strict()
  .refine((c) => new Set(c.tokens.map((t) => t.token)).size === c.tokens.length, { message: 'tokens must be unique' });
export type TokenConfig = z.infer<typeof TokenConfigSchema>;

/** The token table's admin project: its `admin` tokens are cloud admins, an `admin` elsewhere is its own project's only. */
export const DEFAULT_ADMIN_PROJECT = 'admin';
export const DEFAULT_DEMO_PROJECT = 'demo';
/** The project of the token table's service token (the workers'), as Nova's and Glance's service users live in `service`. */
export const DEFAULT_SERVICE_PROJECT = 'service';

export const AuthEnvSchema = z.object({
  /** Gitignored directory for generated state (tokens, SQLite file, images). */
  SNAP_DATA_DIR: DataDirSchema,
  /** Fixes the admin token instead of the generated one (CI, scripted setups). */
  SNAP_ADMIN_TOKEN: TokenSchema.optional(),
  /** Token table path; defaults to <SNAP_DATA_DIR>/tokens.json. */
  SNAP_TOKENS_FILE: z.string().min(1).optional(),
});
export type AuthEnv = z.infer<typeof AuthEnvSchema>;
