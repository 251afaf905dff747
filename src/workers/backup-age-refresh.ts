// The control worker's view of each instance's last good backup, refreshed from the image service,
// and of how old its backup schedule lets it grow, refreshed from Temporal's schedule listing: at
// start (a restarted worker knows every instance, not only those it backed up since) and every few
// minutes (an instance whose backups are all gone, e.g. deleted with it, drops out of the age gauge
// instead of alerting forever; a deleted or paused schedule drops out of the allowance). Between
// refreshes, each completed backup updates the age at once. Either source failing keeps what is
// known of it and leaves the other's refresh alone.
import type { Logger } from 'pino';
import type { Image, ImageClient } from '../images/client';
import type { BackupMetrics, LastBackup, ScheduleAllowance } from '../observability';
import type { BackupScheduleListing, BackupSchedules } from '../temporal/backup-schedules';
import { scheduleMaxAgeSeconds } from '../temporal/schedule-allowance';

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

/**
 * Each schedule's allowance under the backup_type it makes. A schedule made outside our API has no
 * memo naming its type, so it has no series to be compared with and is left out.
 */
export function scheduleAllowancesOf(schedules: readonly BackupScheduleListing[], runAllowanceSeconds?: number): ScheduleAllowance[] {
  return schedules.flatMap((s) => {
    const maxAgeSeconds = scheduleMaxAgeSeconds(s, runAllowanceSeconds);
    return s.backup === null || maxAgeSeconds === null ? [] : [{ instanceUuid: s.instanceUuid, backupType: s.backup.backupType, maxAgeSeconds }];
  });
}

export interface BackupAgeRefreshOptions {
  images: ImageClient;
  metrics: BackupMetrics;
  log: Logger;
  /** without it, no schedule allowances are exported */
  schedules?: Pick<BackupSchedules, 'list'>;
  /** what a backup run itself may take, in each allowance (SNAP_BACKUP_RUN_ALLOWANCE_S; 1 h when unset) */
  runAllowanceSeconds?: number;
  intervalMs?: number;
}

/** One refresh of both gauges; a source that fails is logged and its gauge kept as it was. */
export async function refreshBackupAges(options: Omit<BackupAgeRefreshOptions, 'intervalMs'>): Promise<void> {
  const { images, metrics, log, schedules, runAllowanceSeconds } = options;
  const refresh = async (replace: () => Promise<void>, warning: string): Promise<void> => {
    try {
      await replace();
    } catch (err) {
      log.warn({ err }, warning);
    }
  };
  await Promise.all([
    refresh(async () => metrics.replaceLastBackups(lastBackupsOf(await images.list({ status: 'active' }))), 'could not list backups for the last-backup age gauge; keeping what is known'),
    schedules === undefined
      ? undefined
      : refresh(async () => metrics.replaceScheduleAllowances(scheduleAllowancesOf(await schedules.list(), runAllowanceSeconds)), 'could not list backup schedules for the schedule allowance gauge; keeping what is known'),
  ]);
}

export function startBackupAgeRefresh(options: BackupAgeRefreshOptions): { stop(): void } {
  // A tick while the last refresh still runs is skipped: a slow older listing landing after a newer one would bring back what is gone.
  let running: Promise<void> | null = null;
  const tick = (): void => {
    if (running !== null) return;
    running = refreshBackupAges(options).finally(() => {
      running = null;
    });
  };
  tick();
  const timer = setInterval(tick, options.intervalMs ?? BACKUP_AGE_REFRESH_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
