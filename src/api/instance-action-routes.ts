// /v2.1/servers/{id}/os-instance-actions: Nova's instance actions for the servers a caller can see,
// with the views each microversion defines (events for everyone from 2.51, updated_at from 2.58,
// hostId and host from 2.62, details from 2.84; traceback and host for admins only).
import { z } from 'zod';
import { isCloudAdmin } from '../auth';
import type { InstanceAction, InstanceActionEvent } from '../store';
import { notFound } from './api-errors';
import { atLeast, type Microversion } from './microversion';
import { faultResponse, UNAUTHORIZED_RESPONSE } from './openapi';
import { defineRoute, visibleInstance, type ApiRoute, type RequestContext } from './request-context';
import { hostId, novaTime } from './server-view';

const EVENTS_FOR_ALL = { major: 2, minor: 51 };
const UPDATED_AT = { major: 2, minor: 58 };
const EVENT_HOST = { major: 2, minor: 62 };
const EVENT_DETAILS = { major: 2, minor: 84 };

const ActionSchema = z.object({
  action: z.string(),
  instance_uuid: z.string(),
  message: z.string().nullable(),
  project_id: z.string(),
  request_id: z.string(),
  start_time: z.string(),
  user_id: z.string(),
  updated_at: z.string().optional().describe('2.58 and later'),
});
const EventSchema = z.object({
  event: z.string(),
  start_time: z.string(),
  finish_time: z.string().nullable(),
  result: z.string().nullable(),
  traceback: z.string().nullable().optional().describe('admins only'),
  hostId: z.string().optional().describe('2.62 and later'),
  host: z.string().optional().describe('2.62 and later, admins only'),
  details: z.string().nullable().optional().describe('2.84 and later'),
});
const ParamsSchema = z.object({ server_id: z.string().describe('server uuid') });

function actionView(version: Microversion, a: InstanceAction): z.infer<typeof ActionSchema> {
  return {
    action: a.action,
    instance_uuid: a.instanceUuid,
    message: a.message,
    project_id: a.projectId,
    request_id: a.requestId,
    start_time: novaTime(a.startTime),
    user_id: a.userId ?? '',
    ...(atLeast(version, UPDATED_AT) ? { updated_at: novaTime(a.updatedAt) } : {}),
  };
}

function eventView(ctx: RequestContext, projectId: string | null, e: InstanceActionEvent): z.infer<typeof EventSchema> {
  const admin = isCloudAdmin(ctx.identity);
  return {
    event: e.event,
    start_time: novaTime(e.startTime),
    finish_time: e.finishTime === null ? null : novaTime(e.finishTime),
    result: e.result,
    ...(admin ? { traceback: e.traceback } : {}),
    ...(atLeast(ctx.version, EVENT_HOST) ? { hostId: hostId(projectId ?? '', e.host ?? ''), ...(admin ? { host: e.host ?? '' } : {}) } : {}),
    ...(atLeast(ctx.version, EVENT_DETAILS) ? { details: null } : {}),
  };
}

async function serverOf(ctx: RequestContext) {
  const raw = ctx.params.server_id ?? '';
  if (!z.string().uuid().safeParse(raw).success) throw notFound(`Instance ${raw.slice(0, 64)} could not be found.`);
  return visibleInstance(ctx, raw);
}

const listActions = defineRoute({
  method: 'GET',
  url: '/v2.1/servers/:server_id/os-instance-actions',
  adminOnly: false,
  versioned: true,
  schema: {
    summary: 'Instance actions of a server (every createImage request), newest first',
    params: ParamsSchema,
    response: { 200: z.object({ instanceActions: z.array(ActionSchema) }), ...UNAUTHORIZED_RESPONSE, 404: faultResponse('unknown server or another project\'s') },
  },
  async handle(ctx) {
    const instance = await serverOf(ctx);
    const actions = await ctx.services.store.actions.list(instance.uuid);
    return { status: 200, body: { instanceActions: actions.map((a) => actionView(ctx.version, a)) } };
  },
});

const showAction = defineRoute({
  method: 'GET',
  url: '/v2.1/servers/:server_id/os-instance-actions/:request_id',
  adminOnly: false,
  versioned: true,
  schema: {
    summary: 'One instance action with its events (compute_snapshot_instance: Success or Error)',
    params: ParamsSchema.extend({ request_id: z.string() }),
    response: {
      200: z.object({ instanceAction: ActionSchema.extend({ events: z.array(EventSchema).optional().describe('admins only before 2.51') }) }),
      ...UNAUTHORIZED_RESPONSE,
      404: faultResponse('unknown server, another project\'s, or unknown request id'),
    },
  },
  async handle(ctx) {
    const instance = await serverOf(ctx);
    const requestId = ctx.params.request_id ?? '';
    const found = await ctx.services.store.actions.get(instance.uuid, requestId);
    if (found === undefined) throw notFound(`Action for request_id ${requestId.slice(0, 64)} on instance ${instance.uuid} not found`);
    const withEvents = isCloudAdmin(ctx.identity) || atLeast(ctx.version, EVENTS_FOR_ALL);
    const view = { ...actionView(ctx.version, found.action), ...(withEvents ? { events: found.events.map((e) => eventView(ctx, instance.projectId, e)) } : {}) };
    return { status: 200, body: { instanceAction: view } };
  },
});

export const INSTANCE_ACTION_ROUTES: readonly ApiRoute[] = [listActions, showAction];
