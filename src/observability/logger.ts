// One pino configuration for the API, both workers and the CLI's server side: JSON lines on stdout,
// with the snapshot fields under fixed names so logs of one snapshot can be joined across processes.
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { z } from 'zod';

export type { Logger } from 'pino';

export const LogLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export interface LoggerOptions {
  /** Component name, e.g. "compute-api", "control-worker", "host-worker". */
  name: string;
  level?: LevelWithSilent;
  /** Defaults to stdout; tests pass a stream to capture lines. */
  destination?: DestinationStream;
}

/** Level from SNAP_LOG_LEVEL (default info). */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LevelWithSilent {
  return LogLevelSchema.default('info').parse(env.SNAP_LOG_LEVEL);
}

export function createLogger(options: LoggerOptions): Logger {
  const config = {
    name: options.name,
    level: options.level ?? 'info',
    // Tokens never reach the logs even if a request object is logged whole.
    redact: { paths: ['req.headers["x-auth-token"]', 'headers["x-auth-token"]', 'token'], censor: '[redacted]' },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}

export interface SnapshotLogFields {
  instanceUuid?: string;
  workflowId?: string;
  runId?: string;
  step?: string;
  imageId?: string;
  host?: string;
}

/** The snapshot's identity as log fields (snake_case, as log pipelines expect). */
export function snapshotFields(fields: SnapshotLogFields): Record<string, string> {
  const out: Record<string, string> = {};
  if (fields.instanceUuid !== undefined) out.instance_uuid = fields.instanceUuid;
  if (fields.workflowId !== undefined) out.workflow_id = fields.workflowId;
  if (fields.runId !== undefined) out.run_id = fields.runId;
  if (fields.step !== undefined) out.step = fields.step;
  if (fields.imageId !== undefined) out.image_id = fields.imageId;
  if (fields.host !== undefined) out.host = fields.host;
  return out;
}

/** A child logger carrying one snapshot's fields on every line. */
export function snapshotLogger(parent: Logger, fields: SnapshotLogFields): Logger {
  return parent.child(snapshotFields(fields));
}
