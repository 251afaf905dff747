// Backup metrics of the control worker: backups started, completed and failed by backup_type, the
// older backups that rotation and retention deleted, and, per instance and type, when its last good
// backup was made and how old it is now, and how old its schedule lets it grow (what
// docs/alerts/backups.rules.yml compares).
import { Counter, Gauge, type Registry } from 'prom-client';

export const BACKUP_METRIC_NAMES = {
  started: 'backups_started_total',
  completed: 'backups_completed_total',
  failed: 'backups_failed_total',
  rotated: 'backups_rotated_total',
  pruned: 'backups_pruned_total',
  lastSuccess: 'backup_last_success_timestamp_seconds',
  lastSuccessAge: 'backup_last_success_age_seconds',
  scheduleMaxAge: 'backup_schedule_max_age_seconds',
} as const;

export type BackupEvent = 'started' | 'completed' | 'failed';

/** An instance's newest active backup of a type, as the image service lists it. */
export interface LastBackup {
  instanceUuid: string;
  backupType: string;
  at: Date;
}

/** How old an instance's last good backup of a type may be, by its (unpaused) backup schedule. */
export interface ScheduleAllowance {
  instanceUuid: string;
  backupType: string;
  maxAgeSeconds: number;
}

export interface BackupMetrics {
  count(event: BackupEvent, backupType: string): void;
  /** older backups deleted by Nova's rotation or by a schedule's retention */
  countDeleted(reason: 'rotated' | 'pruned', backupType: string, images: number): void;
  /** a backup went active: its instance's last good backup of the type is now (or `at`) */
  recordSuccess(instanceUuid: string, backupType: string, at?: Date): void;
  /**
   * Replaces what is known of last good backups with a listing of the image service: instances
   * whose backups are all gone (deleted instances) drop out, and a restarted worker knows them all.
   */
  replaceLastBackups(listing: readonly LastBackup[]): void;
  /** Replaces the schedules' allowances with a listing of the schedules: a deleted or paused one drops out. */
  replaceScheduleAllowances(listing: readonly ScheduleAllowance[]): void;
}

const key = (instanceUuid: string, backupType: string): string => `${instanceUuid}\n${backupType}`;

export function createBackupMetrics(registry: Registry, now: () => number = Date.now): BackupMetrics {
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['backup_type'] as const, registers: [registry] });
  const counters = {
    started: counter(BACKUP_METRIC_NAMES.started, 'Backups (createBackup and scheduled) whose snapshot run started'),
    completed: counter(BACKUP_METRIC_NAMES.completed, 'Backups whose image went active'),
    failed: counter(BACKUP_METRIC_NAMES.failed, 'Backups that failed (nothing was rotated or pruned)'),
    rotated: counter(BACKUP_METRIC_NAMES.rotated, 'Older backup images deleted by Nova\'s rotation'),
    pruned: counter(BACKUP_METRIC_NAMES.pruned, 'Older backup images deleted by a schedule\'s retention (keep-last, keep-daily …)'),
  };
  const last = new Map<string, LastBackup>();
  const labels = (b: LastBackup) => ({ instance_uuid: b.instanceUuid, backup_type: b.backupType });
  new Gauge({
    name: BACKUP_METRIC_NAMES.lastSuccess,
    help: 'Unix time of the last good (active) backup of each instance and backup_type',
    labelNames: ['instance_uuid', 'backup_type'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const b of last.values()) this.set(labels(b), b.at.getTime() / 1000);
    },
  });
  new Gauge({
    name: BACKUP_METRIC_NAMES.lastSuccessAge,
    help: 'Seconds since the last good (active) backup of each instance and backup_type',
    labelNames: ['instance_uuid', 'backup_type'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const b of last.values()) this.set(labels(b), Math.max(0, (now() - b.at.getTime()) / 1000));
    },
  });
  let allowances: readonly ScheduleAllowance[] = [];
  new Gauge({
    name: BACKUP_METRIC_NAMES.scheduleMaxAge,
    help: 'Seconds the last good backup of each instance and backup_type may be old under its backup schedule (none while paused)',
    labelNames: ['instance_uuid', 'backup_type'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const a of allowances) this.set({ instance_uuid: a.instanceUuid, backup_type: a.backupType }, a.maxAgeSeconds);
    },
  });
  const remember = (b: LastBackup): void => {
    const known = last.get(key(b.instanceUuid, b.backupType));
    if (known === undefined || known.at < b.at) last.set(key(b.instanceUuid, b.backupType), b);
  };
  return {
    count: (event, backupType) => counters[event].inc({ backup_type: backupType }),
    countDeleted: (reason, backupType, images) => {
      if (images > 0) counters[reason].inc({ backup_type: backupType }, images);
    },
    recordSuccess: (instanceUuid, backupType, at = new Date(now())) => remember({ instanceUuid, backupType, at }),
    replaceLastBackups: (listing) => {
      last.clear();
      for (const b of listing) remember(b);
    },
    replaceScheduleAllowances: (listing) => {
      allowances = [...listing];
    },
  };
}
