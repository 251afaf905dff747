// snapctl schedule create|list|show|pause|resume|trigger|delete: a server's backup schedule through
// the compute API's os-backup-schedule extension.
import { z } from 'zod';
import { ScheduleViewSchema, type ScheduleView } from '../api/backup-schedule-schemas';
import { RETENTION_PERIODS, type RetentionPeriod } from '../contract';
import { parseAnswer, type ComputeApiClient } from './api-client';
import { resolveServer } from './compute-commands';
import { usageError } from './cli-errors';
import { emit, keyValues, line, table, type Output } from './output';

const ScheduleAnswerSchema = z.object({ backup_schedule: ScheduleViewSchema });
const SchedulesAnswerSchema = z.object({ backup_schedules: z.array(ScheduleViewSchema) });

export const SCHEDULE_USAGE = `schedule create <server> (--cron EXPR | --interval DURATION) --type T --keep N [--time-zone Z] [--jitter DURATION]
  [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N]
schedule list [--all] | schedule show|trigger|resume|delete <server> | schedule pause <server> [--note TEXT]`;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `3600`, `90s`, `30m`, `6h` or `1d` in seconds. */
export function parseDuration(option: string, text: string): number {
  const match = /^([0-9]{1,9})([smhd]?)$/.exec(text.trim());
  if (match === null) throw usageError(`--${option} expects seconds or a number with s, m, h or d (e.g. 30m), got ${JSON.stringify(text)}`);
  return Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? 1);
}

export interface ScheduleCreateOptions {
  cron?: string;
  interval?: string;
  timeZone?: string;
  jitter?: string;
  type?: string;
  keep?: string;
  /** Proxmox Backup Server's prune options, the API's retention (keep_last … keep_yearly) */
  retention?: Partial<Record<RetentionPeriod, string>>;
}


function retentionBody(given: ScheduleCreateOptions['retention']): Record<string, number> | undefined {
  const body: Record<string, number> = {};
  for (const keep of RETENTION_PERIODS) {
    const value = given?.[keep];
    if (value === undefined) continue;
    if (!/^[0-9]{1,6}$/.test(value)) throw usageError(`--keep-${keep} expects a count, got ${JSON.stringify(value)}`);
    body[`keep_${keep}`] = Number(value);
  }
  return Object.keys(body).length > 0 ? body : undefined;
}

/** The PUT body; the API checks the values, snapctl only that the command line names what it needs. */
export function scheduleBody(o: ScheduleCreateOptions): { backup_schedule: Record<string, unknown> } {
  if ((o.cron === undefined) === (o.interval === undefined)) throw usageError('schedule create needs exactly one of --cron and --interval');
  if (o.type === undefined) throw usageError('schedule create needs --type (the backup_type, e.g. daily)');
  if (o.keep === undefined || !/^[0-9]+$/.test(o.keep)) throw usageError('schedule create needs --keep N (how many backups of the type to keep)');
  const retention = retentionBody(o.retention);
  return {
    backup_schedule: {
      ...(o.cron !== undefined ? { cron: o.cron } : {}),
      ...(o.interval !== undefined ? { interval_seconds: parseDuration('interval', o.interval) } : {}),
      ...(o.timeZone !== undefined ? { time_zone: o.timeZone } : {}),
      ...(o.jitter !== undefined ? { jitter_seconds: parseDuration('jitter', o.jitter) } : {}),
      backup_type: o.type,
      rotation: Number(o.keep),
      ...(retention !== undefined ? { retention } : {}),
    },
  };
}

const schedulePath = (serverId: string): string => `/v2.1/servers/${encodeURIComponent(serverId)}/os-backup-schedule`;

function when(s: ScheduleView): string {
  const timing = s.cron !== null ? `cron ${s.cron}` : `every ${s.interval_seconds ?? '?'}s`;
  return `${timing}${s.time_zone !== null ? ` (${s.time_zone})` : ''}`;
}

function showText(s: ScheduleView): string {
  return keyValues([
    ['id', s.id],
    ['server_id', s.server_id],
    ['when', when(s)],
    ['jitter_seconds', s.jitter_seconds],
    ['backup_type', s.backup_type],
    ['rotation', s.rotation],
    ['retention', s.retention === null ? null : Object.entries(s.retention).map(([k, v]) => `${k}=${v}`).join(' ')],
    ['paused', s.note !== null && s.paused ? `yes (${s.note})` : s.paused ? 'yes' : 'no'],
    ['catchup_window_seconds', s.catchup_window_seconds],
    ['next_runs', s.next_runs.slice(0, 3).join(', ')],
    ['recent_runs', s.recent_runs.slice(-3).map((r) => `${r.taken_at} ${r.workflow_id}`).join(', ')],
    ['temporal_ui', s.temporal_ui_url],
  ]);
}

export async function scheduleCreateCommand(api: ComputeApiClient, out: Output, ref: string, options: ScheduleCreateOptions): Promise<void> {
  const body = scheduleBody(options);
  const id = await resolveServer(api, ref);
  const answer = await api.request('PUT', schedulePath(id), body);
  const { backup_schedule: s } = parseAnswer(ScheduleAnswerSchema, answer.json);
  emit(out, { backup_schedule: s }, () => `${line(`Backup schedule ${s.id} ${answer.status === 201 ? 'created' : 'replaced'}`)}${showText(s)}`);
}

export async function scheduleListCommand(api: ComputeApiClient, out: Output, all: boolean): Promise<void> {
  const { backup_schedules: list } = parseAnswer(SchedulesAnswerSchema, await api.get(`/v2.1/os-backup-schedules${all ? '?all_tenants=1' : ''}`));
  emit(out, { backup_schedules: list }, () =>
    table(
      ['SERVER', 'WHEN', 'TYPE', 'KEEP', 'PAUSED', 'NEXT RUN'],
      list.map((s) => [s.server_id, when(s), s.backup_type, s.rotation, s.paused ? 'yes' : 'no', s.next_runs[0]]),
    ),
  );
}

export async function scheduleShowCommand(api: ComputeApiClient, out: Output, ref: string): Promise<void> {
  const id = await resolveServer(api, ref);
  const { backup_schedule: s } = parseAnswer(ScheduleAnswerSchema, await api.get(schedulePath(id)));
  emit(out, { backup_schedule: s }, () => showText(s));
}

export type ScheduleAction = 'pause' | 'resume' | 'trigger';
const DONE: Record<ScheduleAction, string> = { pause: 'paused', resume: 'resumed', trigger: 'triggered: a backup starts now (skipped while a snapshot of the server runs)' };

export async function scheduleActionCommand(api: ComputeApiClient, out: Output, ref: string, action: ScheduleAction, note?: string): Promise<void> {
  const id = await resolveServer(api, ref);
  const body = action === 'trigger' ? { trigger: null } : { [action]: note === undefined ? null : { note } };
  await api.request('POST', `${schedulePath(id)}/action`, body);
  emit(out, { server_id: id, action }, () => line(`Backup schedule of ${id} ${DONE[action]}`));
}

export async function scheduleDeleteCommand(api: ComputeApiClient, out: Output, ref: string): Promise<void> {
  const id = await resolveServer(api, ref);
  await api.request('DELETE', schedulePath(id));
  emit(out, { server_id: id, deleted: true }, () => line(`Backup schedule of ${id} deleted (its backups stay)`));
}
