import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** The ApplicationFailure type an activity failed with (see src/activities/activity-failures.ts). */
export function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

/** The message with its causes, e.g. "Activity task failed: injected upload failure for image …". */
export function failureText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  while (current instanceof Error && parts.length < 5) {
    if (current.message) parts.push(current.message);
    current = current.cause;
  }
  return parts.length === 0 ? String(err) : parts.join(': ');
}
