// The os-backup-schedule extension's request and answer shapes (snake_case, as Nova's bodies are),
// made of the schedule contract's own field schemas so the API refuses exactly what the schedule
// would, and the mapping between the two.
import { z } from 'zod';
import {
  CronSchema,
  hasOneTiming,
  IntervalSecondsSchema,
  JitterSecondsSchema,
  RETENTION_PERIODS,
  retentionOption,
  RetentionSchema,
  TimeZoneSchema,
  type Retention,
  type BackupScheduleSpec,
  type BackupSpec,
} from '../contract';
import type { BackupScheduleListing, BackupScheduleView } from '../temporal/backup-schedules';
import { MetadataValueSchema } from './api-schemas';

/** A schedule keeps at least its newest backup; beyond a thousand an operator wants retention, not rotation. */
export const MAX_SCHEDULE_ROTATION = 1000;

/** The contract's retention in the API's snake_case (PBS's keep-last … keep-yearly): [keep_x, keepX]. */
const RETENTION_FIELDS = RETENTION_PERIODS.map((period) => [`keep_${period}`, retentionOption(period)] as const);
const RetentionBodySchema = z
  .object({
    ...(Object.fromEntries(RETENTION_FIELDS.map(([snake]) => [snake, z.number().optional()])) as Record<(typeof RETENTION_FIELDS)[number][0], z.ZodOptional<z.ZodNumber>>),
    time_zone: z.string().optional(),
  })
  .strict()
  .transform((r, ctx) => {
    const camel: Record<string, unknown> = { ...(r.time_zone !== undefined ? { timeZone: r.time_zone } : {}) };
    for (const [snake, key] of RETENTION_FIELDS) if (r[snake] !== undefined) camel[key] = r[snake];
    const parsed = RetentionSchema.safeParse(camel);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: issue.path.map((k) => RETENTION_FIELDS.find(([, c]) => c === k)?.[0] ?? (k === 'timeZone' ? 'time_zone' : k)) });
      return z.NEVER;
    }
    return parsed.data;
  });

function retentionView(r: Retention | undefined): Record<string, number | string> | null {
  if (r === undefined) return null;
  const view: Record<string, number | string> = {};
  for (const [snake, key] of RETENTION_FIELDS) if (r[key] !== undefined) view[snake] = r[key];
  if (r.timeZone !== undefined) view.time_zone = r.timeZone;
  return view;
}

export const ScheduleBodySchema = z
  .object({
    backup_schedule: z
      .object({
        cron: CronSchema.optional().describe("five-field cron expression, or @daily, @weekly …; read in time_zone (default UTC)"),
        interval_seconds: IntervalSecondsSchema.optional().describe('seconds between backups (instead of cron)'),
        time_zone: TimeZoneSchema.optional().describe('IANA time zone name, e.g. Europe/Berlin'),
        jitter_seconds: JitterSecondsSchema.optional().describe('each run starts up to this many seconds late, at random'),
        backup_type: MetadataValueSchema.pipe(z.string().min(1)).describe("createBackup's backup_type, e.g. 'daily'"),
        rotation: z.number().int().min(1).max(MAX_SCHEDULE_ROTATION).describe("createBackup's rotation: how many backups of the type to keep"),
        retention: RetentionBodySchema.optional().describe("Proxmox Backup Server's prune, applied after the rotation: keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly (each at least 1), time_zone"),
      })
      .strict()
      .refine((s) => hasOneTiming({ cron: s.cron, intervalSeconds: s.interval_seconds }), 'exactly one of cron and interval_seconds'),
  })
  .strict()
  .describe('Create the server\'s backup schedule, or replace it');
export type ScheduleBody = z.infer<typeof ScheduleBodySchema>;

/** `{"pause": {"note"?}}`, `{"resume": null}` or `{"trigger": null}`: one action per body, as Nova's server actions. */
const NoteSchema = z.object({ note: MetadataValueSchema.optional() }).strict().nullable();
export const ScheduleActionBodySchema = z
  .object({ pause: NoteSchema.optional(), resume: NoteSchema.optional(), trigger: z.object({}).strict().nullable().optional() })
  .strict()
  .describe('pause (with an optional note), resume, or trigger a backup now');
export type ScheduleActionBody = z.infer<typeof ScheduleActionBodySchema>;
export const SCHEDULE_ACTIONS = ['pause', 'resume', 'trigger'] as const;

const RunSchema = z.object({ scheduled_at: z.string(), taken_at: z.string(), workflow_id: z.string() });
export const ScheduleViewSchema = z.object({
  id: z.string().describe('the Temporal Schedule id, backup-<server uuid>'),
  server_id: z.string(),
  project_id: z.string().nullable(),
  cron: z.string().nullable(),
  interval_seconds: z.number().nullable(),
  time_zone: z.string().nullable(),
  jitter_seconds: z.number().nullable(),
  backup_type: z.string().nullable(),
  rotation: z.number().nullable(),
  retention: z.record(z.union([z.number(), z.string()])).nullable(),
  paused: z.boolean(),
  note: z.string().nullable(),
  catchup_window_seconds: z.number().optional().describe('show only'),
  next_runs: z.array(z.string()),
  recent_runs: z.array(RunSchema).describe('oldest first'),
  temporal_ui_url: z.string().nullable().describe('the schedule in the Temporal UI; cloud admins only'),
});
export type ScheduleView = z.infer<typeof ScheduleViewSchema>;
export const ScheduleResponseSchema = z.object({ backup_schedule: ScheduleViewSchema });
export const SchedulesResponseSchema = z.object({ backup_schedules: z.array(ScheduleViewSchema) });

export function specOf(body: ScheduleBody): { spec: BackupScheduleSpec; backup: BackupSpec } {
  const s = body.backup_schedule;
  return {
    spec: {
      ...(s.cron !== undefined ? { cron: s.cron } : {}),
      ...(s.interval_seconds !== undefined ? { intervalSeconds: s.interval_seconds } : {}),
      ...(s.time_zone !== undefined ? { timeZone: s.time_zone } : {}),
      ...(s.jitter_seconds !== undefined ? { jitterSeconds: s.jitter_seconds } : {}),
    },
    backup: { backupType: s.backup_type, rotation: s.rotation, ...(s.retention !== undefined ? { retention: s.retention } : {}) },
  };
}

export function scheduleView(s: BackupScheduleListing | BackupScheduleView, temporalUiUrl: string | null): ScheduleView {
  return {
    id: s.scheduleId,
    server_id: s.instanceUuid,
    project_id: s.projectId,
    cron: s.spec?.cron ?? null,
    interval_seconds: s.spec?.intervalSeconds ?? null,
    time_zone: s.spec?.timeZone ?? null,
    jitter_seconds: s.spec?.jitterSeconds ?? null,
    backup_type: s.backup?.backupType ?? null,
    rotation: s.backup?.rotation ?? null,
    retention: retentionView(s.backup?.retention),
    paused: s.paused,
    note: s.note,
    ...('catchupWindowSeconds' in s ? { catchup_window_seconds: s.catchupWindowSeconds } : {}),
    next_runs: s.nextRuns,
    recent_runs: s.recentRuns.map((r) => ({ scheduled_at: r.scheduledAt, taken_at: r.takenAt, workflow_id: r.workflowId })),
    temporal_ui_url: temporalUiUrl,
  };
}
