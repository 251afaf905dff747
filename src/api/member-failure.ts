// The failure of a snapshot run as a project member sees it. Nova shows a member an instance
// action event's result and a safe message, never its traceback (os-instance-actions:events is
// admin-only; a non-Nova exception's message is reduced to its class name): the full text can name
// host paths, tool stderr, libvirt's and the guest agent's words and internal URLs. Here a member
// sees the failure's type and one fixed sentence for it; admins see the text through /ops.
import { ErrorTypes, VOLUME_BACKED_BACKUP_REFUSAL } from '../contract';

/** How a run that closed without an activity failure ended, as failure types of their own. */
export const RunEndings = {
  Terminated: 'Terminated',
  TimedOut: 'TimedOut',
  Cancelled: 'Cancelled',
} as const;

const GONE = 'The instance was deleted, or its domain disappeared from the host, during the snapshot.';

const SENTENCES: ReadonlyMap<string, string> = new Map(Object.entries({
  [ErrorTypes.InstanceNotFound]: GONE,
  [ErrorTypes.UnexpectedDeletingTaskState]: GONE,
  [ErrorTypes.InstanceNotRunning]: GONE,
  [ErrorTypes.UnexpectedTaskState]: 'Another operation on the instance was in progress.',
  [ErrorTypes.ImageNotFound]: 'The snapshot image was deleted while the snapshot was taken.',
  [ErrorTypes.InvalidInput]: 'The snapshot request or the instance\'s disk cannot be snapshotted.',
  [ErrorTypes.VolumeBackedBackup]: VOLUME_BACKED_BACKUP_REFUSAL,
  // Types of src/activities/activity-failures.ts that have no constant in the contract.
  ImageRejected: 'The image service refused the snapshot image.',
  InsufficientSpace: 'The compute host had no space left for the snapshot.',
  [RunEndings.Terminated]: 'The snapshot was stopped by an administrator.',
  [RunEndings.TimedOut]: 'The snapshot did not finish in time and was stopped.',
  [RunEndings.Cancelled]: 'The snapshot was cancelled.',
}));

const UNKNOWN = 'SnapshotFailed: The snapshot failed; an administrator can see why.';

/** "<type>: <sentence>" for the types above; any other failure (or none known) reads the same generic line. */
export function memberFailureText(failureType: string | null | undefined): string {
  const sentence = failureType === null || failureType === undefined ? undefined : SENTENCES.get(failureType);
  return sentence === undefined ? UNKNOWN : `${failureType}: ${sentence}`;
}
