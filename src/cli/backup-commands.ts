// snapctl backups [<server>]: each instance's backups as the compute API lists them (type, kind,
// size, age, the schedule that made each).
import { z } from 'zod';
import { BackupViewSchema } from '../api/backup-routes';
import { parseAnswer, type ComputeApiClient } from './api-client';
import { resolveServer } from './compute-commands';
import { emit, table, type Output } from './output';
import { formatBytes } from './progress-bar';

const BackupsSchema = z.object({ backups: z.array(BackupViewSchema) });

/** An age as an operator reads it: the two largest units (3d 4h, 2h 5m, 40s). */
export function formatAge(seconds: number): string {
  const units: [string, number][] = [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(seconds));
  for (const [unit, size] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || (parts.length > 0 && parts.length < 2)) parts.push(`${count}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.length === 0 ? '0s' : parts.join(' ');
}

export async function listBackupsCommand(api: ComputeApiClient, out: Output, options: { server?: string; allProjects: boolean }): Promise<void> {
  const path = options.server === undefined ? `/v2.1/os-backups${options.allProjects ? '?all_tenants=1' : ''}` : `/v2.1/servers/${encodeURIComponent(await resolveServer(api, options.server))}/os-backups`;
  const { backups } = parseAnswer(BackupsSchema, await api.get(path));
  emit(out, { backups }, () =>
    table(
      ['SERVER', 'ID', 'TYPE', 'KIND', 'SIZE', 'AGE', 'STATUS', 'SCHEDULE'],
      backups.map((b) => [b.server_id, b.id, b.backup_type, b.kind, b.size === null ? null : formatBytes(b.size), formatAge(b.age_seconds), b.status, b.backup_schedule_id]),
    ),
  );
}
