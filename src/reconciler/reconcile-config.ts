// The reconciler's settings from the environment, validated at control-worker start so a bad value
// stops the process with a message naming the variable instead of silently never reconciling.
import { z } from 'zod';
import { EnvBooleanSchema } from '../config/env';
import { parseOrThrow } from '../config/validation';

export const ReconcileEnvSchema = z.object({
  /** Seconds between passes (one pass also runs right after start-up). */
  SNAP_RECONCILE_INTERVAL_S: z.coerce.number().int().min(1).max(86_400).default(60),
  /**
   * Seconds a task_state or a non-active snapshot image must have stood still before it may be
   * cleaned. The API creates the image and sets task_state a moment before it starts the workflow
   * (its start deadline is 10 s), so this must comfortably exceed that; 0 is for tests only.
   */
  SNAP_RECONCILE_GRACE_S: z.coerce.number().int().min(0).max(7 * 86_400).default(300),
  /** `false` turns the periodic pass off (e.g. when an operator runs it elsewhere). */
  SNAP_RECONCILE_ENABLED: EnvBooleanSchema.default('true'),
});

export interface ReconcileConfig {
  intervalMs: number;
  graceMs: number;
  enabled: boolean;
}

export function reconcileConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ReconcileConfig {
  const e = parseOrThrow(ReconcileEnvSchema, env, (issues) => new InvalidReconcileConfig(`invalid reconciler configuration: ${issues}`));
  return {
    intervalMs: e.SNAP_RECONCILE_INTERVAL_S * 1000,
    graceMs: e.SNAP_RECONCILE_GRACE_S * 1000,
    enabled: e.SNAP_RECONCILE_ENABLED,
  };
}

export class InvalidReconcileConfig extends Error {
  override readonly name = 'InvalidReconcileConfig';
}
