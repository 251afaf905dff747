// Where snapctl talks to and as whom: environment variables, validated.
import { z } from 'zod';
import { ImageUrlSchema } from '../config/env';
import { parseOrThrow } from '../config/validation';
import { CliError, ExitCode } from './cli-errors';

export const CliEnvSchema = z.object({
  /** X-Auth-Token for the compute and image APIs (printed by the API on first start, stored in .data/tokens.json). */
  SNAP_TOKEN: z.string().min(1).optional(),
  SNAP_API_URL: z.string().url().default('http://127.0.0.1:8774'),
  SNAP_IMAGE_URL: ImageUrlSchema,
});

export interface CliConfig {
  token: string;
  apiUrl: string;
  imageUrl: string;
}

export function cliConfigFromEnv(env: NodeJS.ProcessEnv): CliConfig {
  const e = parseOrThrow(CliEnvSchema, env, (issues) => new CliError(ExitCode.usage, `invalid environment: ${issues}`));
  if (e.SNAP_TOKEN === undefined) {
    throw new CliError(ExitCode.auth, 'no token: set SNAP_TOKEN (the API prints the admin and demo tokens on first start; they are kept in .data/tokens.json)');
  }
  return { token: e.SNAP_TOKEN, apiUrl: e.SNAP_API_URL.replace(/\/$/, ''), imageUrl: e.SNAP_IMAGE_URL };
}
