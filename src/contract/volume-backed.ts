// Nova's rules on volume-backed instances that the API and the workflow must apply alike: which
// instance is one, and that it gets no backups.

/** Nova's compute_utils.is_volume_backed_instance: the root disk is a Cinder volume. */
export function isVolumeBacked(instance: { volumes?: readonly { root: boolean }[] }): boolean {
  return (instance.volumes ?? []).some((v) => v.root);
}

/**
 * Nova's compute API backup() refuses a volume-backed instance (InvalidRequest, a 400 at the API)
 * in these words; the workflow fails a backup run it is handed anyway (a schedule older than the
 * refusal, a root disk that became a volume) in the same.
 */
export const VOLUME_BACKED_BACKUP_REFUSAL = 'Backup is not supported for volume-backed instances.';
