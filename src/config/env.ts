// Building blocks of every process's environment schema, so that a variable is spelled, defaulted
// and rejected the same way by each process that reads it.
import { z } from 'zod';
import { parseOrThrow } from './validation';

/** A bad setting: the process stops at start with the variable named, instead of running misconfigured. */
export class InvalidEnvironment extends Error {
  override readonly name = 'InvalidEnvironment';
}

/** An on/off switch. Only true/false and 1/0: a typo stops the process instead of quietly meaning "off". */
export const EnvBooleanSchema = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/**
 * SNAP_IMAGE_URL: the image service (Glance v2 shaped). Without a trailing slash, so callers can
 * append `/v2/...` to it.
 */
export const ImageUrlSchema = z
  .string()
  .url()
  .default('http://127.0.0.1:9292')
  .transform((url) => url.replace(/\/$/, ''));

/** `env` parsed by `schema`; InvalidEnvironment naming every rejected variable otherwise. */
export function parseEnv<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv, what: string): z.output<S> {
  return parseOrThrow(schema, env, (issues) => new InvalidEnvironment(`invalid ${what} environment: ${issues}`));
}
