// Typed failures of instance-store operations, named after their Nova counterparts so that code
// ported from Nova reads the same (InstanceNotFound, UnexpectedTaskStateError, ...).
import type { TaskState } from '../contract';

export class InstanceNotFound extends Error {
  override readonly name = 'InstanceNotFound';
  /** a deleted instance does not come back */
  readonly retryable = false;
  constructor(readonly instanceUuid: string) {
    super(`Instance ${instanceUuid} could not be found.`);
  }
}

export class UnexpectedTaskState extends Error {
  override readonly name: string = 'UnexpectedTaskState';
  /** another task owns the instance: Nova gives up rather than wait for it */
  readonly retryable = false;
  constructor(
    readonly instanceUuid: string,
    readonly expected: readonly TaskState[],
    readonly actual: TaskState,
  ) {
    super(
      `Unexpected task state for instance ${instanceUuid}: expecting ${formatStates(expected)} but the actual state is ${String(actual)}`,
    );
  }
}

/** Nova's UnexpectedDeletingTaskStateError: the instance is being deleted, so callers should give up rather than retry. */
export class UnexpectedDeletingTaskState extends UnexpectedTaskState {
  override readonly name = 'UnexpectedDeletingTaskState';
  constructor(instanceUuid: string, expected: readonly TaskState[]) {
    super(instanceUuid, expected, 'deleting');
  }
}

export type TaskStateCasError = InstanceNotFound | UnexpectedTaskState | UnexpectedDeletingTaskState;

/** Thrown for invalid arguments or config: a programming error, never a data race. */
export class InvalidStoreInput extends Error {
  override readonly name = 'InvalidStoreInput';
}

function formatStates(states: readonly TaskState[]): string {
  return `[${states.map((s) => String(s)).join(', ')}]`;
}
