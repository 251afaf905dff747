// Who may call createBackup and manage backup schedules, as settings the config, the request
// context and the routes share.
import { z } from 'zod';

/**
 * Who may call createBackup: Nova's default for os_compute_api:os-create-backup is
 * PROJECT_MEMBER_OR_ADMIN (a member or admin of the server's project, or a cloud admin);
 * `admin` narrows it to cloud admins (an operator who keeps backups to itself).
 * The backup schedule extension's rule (os_compute_api:os-backup-schedule) takes the same values.
 */
export const CREATE_BACKUP_POLICIES = ['project_member_or_admin', 'admin'] as const;
export type CreateBackupPolicy = (typeof CREATE_BACKUP_POLICIES)[number];
export const CreateBackupPolicySchema = z.enum(CREATE_BACKUP_POLICIES);

export const BACKUP_SCHEDULE_POLICY_NAME = 'os_compute_api:os-backup-schedule';
