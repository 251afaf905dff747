// The control worker's view of each instance's last good backup, refreshed from the image service:
// at start (a restarted worker knows every instance, not only those it backed up since) and every
// few minutes (an instance whose backups are all gone, e.g. deleted with it, drops out of the age
// gauge instead of alerting forever). Between refreshes, each completed backup updates it at once.
import type { Logger } from 'pino';
import type { Image, ImageClient } from '../images/client';
import type { BackupMetrics, LastBackup } from '../observability';

export const BACKUP_AGE_REFRESH_MS = 5 * 60_000;

/** The newest active backup of each instance and backup_type; its time is the image's created_at. */
export function lastBackupsOf(images: readonly Image[]): LastBackup[] {
  const newest = new Map<string, LastBackup>();
  for (const image of images) {
    const { image_type: imageType, instance_uuid: instanceUuid, backup_type: backupType } = image.properties;
    if (image.status !== 'active' || imageType !== 'backup' || instanceUuid === undefined || backupType === undefined) continue;
    const at = new Date(image.created_at);
    if (Number.isNaN(at.getTime())) continue;
    const key = `${instanceUuid}\n${backupType}`;
    const known = newest.get(key);
    if (known === undefined || known.at < at) newest.set(key, { instanceUuid, backupType, at });
  }
  return [...newest.values()];
}

export function startBackupAgeRefresh(options: { images: ImageClient; metrics: BackupMetrics; log: Logger; intervalMs?: number }): { stop(): void } {
  const refresh = async (): Promise<void> => {
    try {
      options.metrics.replaceLastBackups(lastBackupsOf(await options.images.list({ status: 'active' })));
    } catch (err) {
      options.log.warn({ err }, 'could not list backups for the last-backup age gauge; keeping what is known');
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), options.intervalMs ?? BACKUP_AGE_REFRESH_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
