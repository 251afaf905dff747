// Who may call createBackup, as a setting the config, the request context and the action share.
import { z } from 'zod';

/**
 * Who may call createBackup: Nova's default for os_compute_api:os-create-backup is
 * PROJECT_MEMBER_OR_ADMIN (a member or admin of the server's project, or a cloud admin);
 * `admin` narrows it to cloud admins (an operator who keeps backups to itself).
 */
export const CREATE_BACKUP_POLICIES = ['project_member_or_admin', 'admin'] as const;
export type CreateBackupPolicy = (typeof CREATE_BACKUP_POLICIES)[number];
export const CreateBackupPolicySchema = z.enum(CREATE_BACKUP_POLICIES);
