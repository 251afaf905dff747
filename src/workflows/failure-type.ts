import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** The ApplicationFailure type an activity failed with (see src/activities/activity-failures.ts). */
export function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}
