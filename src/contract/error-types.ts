// The ApplicationFailure types the activities throw for the outcomes the workflow must tell apart
// (the instance vanished, another task owns it, the input is bad): it branches on these names.
export const ErrorTypes = {
  InstanceNotFound: 'InstanceNotFound',
  UnexpectedDeletingTaskState: 'UnexpectedDeletingTaskState',
  UnexpectedTaskState: 'UnexpectedTaskState',
  InstanceNotRunning: 'InstanceNotRunning',
  ImageNotFound: 'ImageNotFound',
  InvalidInput: 'InvalidSnapshotInput',
  /** a backup of a volume-backed instance, which Nova refuses (VOLUME_BACKED_BACKUP_REFUSAL) */
  VolumeBackedBackup: 'VolumeBackedBackup',
} as const;
