// The os-backup-schedule extension: a server's backup schedule (a Temporal Schedule that runs
// createBackup's path at a cron time or interval) read, created or replaced, deleted, paused,
// resumed and triggered; and the schedules of the caller's project. Nova has no such API; its
// shape follows Nova's (snake_case bodies, server actions, fault bodies, 404 for another project's
// server), and one policy rule, like createBackup's, says who may use it.
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ServiceError } from '@temporalio/client';
import { z } from 'zod';
import { isCloudAdmin } from '../auth';
import { backupScheduleId } from '../contract';
import type { Instance } from '../store';
import { ApiError, badRequest, conflict, forbidden, notFound, serviceUnavailable } from './api-errors';
import { ServerIdSchema, ServersQuerySchema } from './api-schemas';
import { refuseUnknownActions } from './backup-action';
import { BACKUP_SCHEDULE_POLICY_NAME } from './backup-policy';
import {
  SCHEDULE_ACTIONS,
  ScheduleActionBodySchema,
  ScheduleBodySchema,
  ScheduleResponseSchema,
  SchedulesResponseSchema,
  scheduleView,
  specOf,
  type ScheduleActionBody,
  type ScheduleBody,
} from './backup-schedule-schemas';
import { listed } from './compute-routes';
import { faultResponse, UNAUTHORIZED_RESPONSE } from './openapi';
import { defineRoute, visibleInstance, type ApiRoute, type RequestContext } from './request-context';
import { refuseVolumeBackedBackup } from './snapshot-starter';

const ParamsSchema = z.object({ server_id: z.string().describe('server uuid') });
const SCHEDULE_URL = '/v2.1/servers/:server_id/os-backup-schedule';
const NOT_FOUND_RESPONSE = { 404: faultResponse("unknown server, another project's, or (show, delete, action) no schedule") };
const UNAVAILABLE_RESPONSE = { 503: faultResponse('Temporal unavailable; nothing was changed') };

function policyAllows(ctx: RequestContext): void {
  if (ctx.services.backupSchedulePolicy === 'admin' && !isCloudAdmin(ctx.identity)) throw forbidden(`Policy doesn't allow ${BACKUP_SCHEDULE_POLICY_NAME} to be performed.`);
}

/** The server, if the caller may see it (404 otherwise, as Nova), then the policy with its project as the target, as createBackup asks. */
async function scheduledServer(ctx: RequestContext): Promise<Instance> {
  const raw = ctx.params.server_id ?? '';
  if (!ServerIdSchema.safeParse(raw).success) throw notFound(`Instance ${raw.slice(0, 64)} could not be found.`);
  const instance = await visibleInstance(ctx, raw);
  policyAllows(ctx);
  return instance;
}

const noSchedule = (uuid: string): ApiError => notFound(`Instance ${uuid} has no backup schedule.`);

/** Temporal's refusals in Nova's words; Temporal away is 503 with nothing changed. */
async function onTemporal<T>(ctx: RequestContext, uuid: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw noSchedule(uuid);
    if (err instanceof ScheduleAlreadyRunning) throw conflict(`The backup schedule of instance ${uuid} was changed by another request; try again.`);
    if (err instanceof ServiceError) {
      ctx.log.error({ err, instance_uuid: uuid }, 'Temporal refused or could not be reached for a backup schedule');
      throw serviceUnavailable('The schedule service is unavailable. Nothing was changed; try again later.');
    }
    throw err;
  }
}

function uiLink(ctx: RequestContext, uuid: string): string | null {
  if (!isCloudAdmin(ctx.identity)) return null;
  const ns = encodeURIComponent(ctx.services.schedules.namespace);
  return `${ctx.services.temporalUiUrl}/namespaces/${ns}/schedules/${encodeURIComponent(backupScheduleId(uuid))}`;
}

const showSchedule = defineRoute({
  method: 'GET',
  url: SCHEDULE_URL,
  adminOnly: false,
  versioned: true,
  schema: { summary: "A server's backup schedule: spec, paused, next runs, recent runs", params: ParamsSchema, response: { 200: ScheduleResponseSchema, ...UNAUTHORIZED_RESPONSE, 403: faultResponse('refused by os_compute_api:os-backup-schedule'), ...NOT_FOUND_RESPONSE, ...UNAVAILABLE_RESPONSE } },
  async handle(ctx) {
    const instance = await scheduledServer(ctx);
    const view = await onTemporal(ctx, instance.uuid, () => ctx.services.schedules.describe(instance.uuid));
    if (view === null) throw noSchedule(instance.uuid);
    return { status: 200, body: { backup_schedule: scheduleView(view, uiLink(ctx, instance.uuid)) } };
  },
});

const putSchedule = defineRoute<ScheduleBody>({
  method: 'PUT',
  url: SCHEDULE_URL,
  adminOnly: false,
  versioned: true,
  schema: {
    summary: "Create a server's backup schedule (201), or replace it (200)",
    params: ParamsSchema,
    body: ScheduleBodySchema,
    response: {
      200: ScheduleResponseSchema.describe('replaced'),
      201: ScheduleResponseSchema.describe('created'),
      400: faultResponse('invalid spec: cron, interval, time zone, jitter, backup_type or rotation; or a volume-backed server (Nova backs none up)'),
      ...UNAUTHORIZED_RESPONSE,
      403: faultResponse('refused by os_compute_api:os-backup-schedule'),
      404: faultResponse("unknown server or another project's"),
      409: faultResponse('the schedule was changed by a concurrent request'),
      ...UNAVAILABLE_RESPONSE,
    },
  },
  async handle(ctx) {
    const instance = await scheduledServer(ctx);
    // Each of its runs is a createBackup, which Nova refuses for a volume-backed server.
    refuseVolumeBackedBackup(instance);
    const { spec, backup } = specOf(ctx.body);
    const { schedules } = ctx.services;
    const existed = (await onTemporal(ctx, instance.uuid, () => schedules.describe(instance.uuid))) !== null;
    const target = { uuid: instance.uuid, projectId: instance.projectId };
    const view = await onTemporal(ctx, instance.uuid, () => (existed ? schedules.replace(target, spec, backup) : schedules.create(target, spec, backup)));
    ctx.log.info({ instance_uuid: instance.uuid, schedule_id: view.scheduleId, replaced: existed, spec, backup }, 'backup schedule set');
    return { status: existed ? 200 : 201, body: { backup_schedule: scheduleView(view, uiLink(ctx, instance.uuid)) } };
  },
});

const deleteSchedule = defineRoute({
  method: 'DELETE',
  url: SCHEDULE_URL,
  adminOnly: false,
  versioned: true,
  schema: { summary: "Delete a server's backup schedule (a backup in progress finishes; the backups stay)", params: ParamsSchema, response: { 204: z.undefined().describe('deleted'), ...UNAUTHORIZED_RESPONSE, 403: faultResponse('refused by os_compute_api:os-backup-schedule'), ...NOT_FOUND_RESPONSE, ...UNAVAILABLE_RESPONSE } },
  async handle(ctx) {
    const instance = await scheduledServer(ctx);
    if (!(await onTemporal(ctx, instance.uuid, () => ctx.services.schedules.delete(instance.uuid)))) throw noSchedule(instance.uuid);
    ctx.log.info({ instance_uuid: instance.uuid }, 'backup schedule deleted');
    return { status: 204 };
  },
});

const scheduleAction = defineRoute<ScheduleActionBody>({
  method: 'POST',
  url: `${SCHEDULE_URL}/action`,
  adminOnly: false,
  versioned: true,
  precheck: (body) => refuseUnknownActions(body, SCHEDULE_ACTIONS),
  schema: {
    summary: 'pause (no scheduled runs until resumed), resume, or trigger a backup now (skipped while a snapshot of the server runs)',
    params: ParamsSchema,
    body: ScheduleActionBodySchema,
    response: { 202: z.undefined().describe('done'), 400: faultResponse('no, two or an unknown action; trigger on a volume-backed server (Nova backs none up)'), ...UNAUTHORIZED_RESPONSE, 403: faultResponse('refused by os_compute_api:os-backup-schedule'), ...NOT_FOUND_RESPONSE, ...UNAVAILABLE_RESPONSE },
  },
  async handle(ctx) {
    const instance = await scheduledServer(ctx);
    const { schedules } = ctx.services;
    const { pause, resume } = ctx.body;
    const act = (): Promise<void> => {
      if (pause !== undefined) return schedules.pause(instance.uuid, pause?.note);
      if (resume !== undefined) return schedules.resume(instance.uuid, resume?.note);
      if ('trigger' in ctx.body) {
        // A run now would be a backup Nova refuses (a schedule made before the refusal, a root disk that became a volume).
        refuseVolumeBackedBackup(instance);
        return schedules.trigger(instance.uuid);
      }
      throw badRequest('Malformed request body');
    };
    await onTemporal(ctx, instance.uuid, act);
    ctx.log.info({ instance_uuid: instance.uuid, action: Object.keys(ctx.body)[0] }, 'backup schedule action');
    return { status: 202 };
  },
});

const listSchedules = defineRoute<undefined, z.infer<typeof ServersQuerySchema>>({
  method: 'GET',
  url: '/v2.1/os-backup-schedules',
  adminOnly: false,
  versioned: true,
  schema: {
    summary: "Backup schedules of the token's project's servers (all_tenants=1 for admins); from Temporal's visibility store, so a schedule made a moment ago may be missing",
    querystring: ServersQuerySchema,
    response: { 200: SchedulesResponseSchema, ...UNAUTHORIZED_RESPONSE, 403: faultResponse('all_tenants without admin, or refused by os_compute_api:os-backup-schedule'), ...UNAVAILABLE_RESPONSE },
  },
  async handle(ctx) {
    policyAllows(ctx);
    // The instance store says whose a server is now; the memo only what it was at creation.
    const servers = new Set((await listed(ctx)).map((i) => i.uuid));
    const found = await onTemporal(ctx, '', () => ctx.services.schedules.list(servers));
    return { status: 200, body: { backup_schedules: found.map((s) => scheduleView(s, uiLink(ctx, s.instanceUuid))) } };
  },
});

export const BACKUP_SCHEDULE_ROUTES: readonly ApiRoute[] = [listSchedules, showSchedule, putSchedule, deleteSchedule, scheduleAction];
