// /v2.1/servers… handlers: listing, show, the createImage action and a project-scoped snapshot
// progress view (what `snapctl snapshot --wait` polls; /ops needs admin).
import type { ZodError } from 'zod';
import { ApiError, badRequest, forbidden, notFound } from './api-errors';
import { CreateImageActionSchema, ServerIdSchema, ServersQuerySchema, WHOLE_FAULT_PARAM } from './api-schemas';
import { readJsonBody } from '../net/http-body';
import { NOVA_BODY_REFUSALS, sendEmpty, sendJson } from './http-io';
import { IMAGE_ID_BODY_VERSION, atLeast } from './microversion';
import { visibleInstance, type RequestContext } from './request-context';
import { serverDetail, serverSummary, type ViewContext } from './server-view';
import { snapshotWorkflowId } from '../contract';

function viewContext(ctx: RequestContext): ViewContext {
  return { baseUrl: ctx.services.baseUrl, imageUrl: ctx.services.imageUrl, isAdmin: ctx.identity.isAdmin };
}

/** Nova's jsonschema validation message shape; a format check's own fault text (InvalidName) as it is. */
export function validationMessage(error: ZodError, body: unknown): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'Invalid input';
  if (issue.code === 'custom' && issue.params?.[WHOLE_FAULT_PARAM] === true) return issue.message;
  const path = issue.path.join('.');
  let value: unknown = body;
  for (const key of issue.path) value = typeof value === 'object' && value !== null ? (value as Record<string | number, unknown>)[key] : undefined;
  const shown = value === undefined ? '' : (JSON.stringify(value) ?? '').slice(0, 100);
  return `Invalid input for field/attribute ${path || 'body'}. Value: ${shown}. ${issue.message}`;
}

function serverId(raw: string): string {
  // Nova answers 404 for an id that cannot be a server (the DB lookup finds nothing).
  if (!ServerIdSchema.safeParse(raw).success) throw notFound(`Instance ${raw.slice(0, 64)} could not be found.`);
  return raw;
}

async function listed(ctx: RequestContext) {
  const query = ServersQuerySchema.safeParse(Object.fromEntries(ctx.url.searchParams));
  if (!query.success) throw badRequest(validationMessage(query.error, Object.fromEntries(ctx.url.searchParams)));
  const all = query.data.all_tenants !== undefined && ['1', 'true', 'True'].includes(query.data.all_tenants);
  if (all && !ctx.identity.isAdmin) throw forbidden('Policy doesn\'t allow os_compute_api:servers:index:get_all_tenants to be performed.');
  return all ? ctx.services.store.listAll() : ctx.services.store.listByProject(ctx.identity.projectId);
}

export async function listServers(ctx: RequestContext): Promise<void> {
  const view = viewContext(ctx);
  const instances = await listed(ctx);
  sendJson(ctx.res, 200, { servers: instances.map((i) => serverSummary(view, i)) }, ctx.headers);
}

export async function listServersDetail(ctx: RequestContext): Promise<void> {
  const view = viewContext(ctx);
  const instances = await listed(ctx);
  sendJson(ctx.res, 200, { servers: instances.map((i) => serverDetail(view, i)) }, ctx.headers);
}

export async function showServer(ctx: RequestContext, rawId: string): Promise<void> {
  const instance = await visibleInstance(ctx, serverId(rawId));
  sendJson(ctx.res, 200, { server: serverDetail(viewContext(ctx), instance) }, ctx.headers);
}

/** POST /v2.1/servers/{id}/action — only createImage is implemented here. */
export async function serverAction(ctx: RequestContext, rawId: string): Promise<void> {
  const body = await readJsonBody(ctx.req, ctx.services.maxBodyBytes, NOVA_BODY_REFUSALS);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('Malformed request body');
  const actions = Object.keys(body);
  if (!actions.includes('createImage')) {
    const name = actions[0];
    throw badRequest(name === undefined ? 'Malformed request body' : `There is no such action: ${name.slice(0, 64)}`);
  }
  const parsed = CreateImageActionSchema.safeParse(body);
  if (!parsed.success) throw badRequest(validationMessage(parsed.error, body));
  const { name, metadata } = parsed.data.createImage;

  const instance = await visibleInstance(ctx, serverId(rawId));
  const started = await ctx.services.starter.start({ instance, name, metadata: metadata ?? {}, images: ctx.services.imagesFor(ctx.token) });
  ctx.log.info({ instance_uuid: instance.uuid, workflow_id: started.workflowId, image_id: started.imageId }, 'createImage accepted');
  const headers = { ...ctx.headers, Location: `${ctx.services.imageUrl}/v2/images/${started.imageId}` };
  if (atLeast(ctx.version, IMAGE_ID_BODY_VERSION)) sendJson(ctx.res, 202, { image_id: started.imageId }, headers);
  else sendEmpty(ctx.res, 202, headers);
}

/** GET /v2.1/servers/{id}/snapshot-progress — the latest snapshot run of a server the caller can see. */
export async function snapshotProgress(ctx: RequestContext, rawId: string): Promise<void> {
  const instance = await visibleInstance(ctx, serverId(rawId));
  try {
    const snapshot = await ctx.services.runs.detail(snapshotWorkflowId(instance.uuid), { hideHost: !ctx.identity.isAdmin });
    sendJson(ctx.res, 200, { snapshot }, ctx.headers);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw notFound(`No snapshot of instance ${instance.uuid} has been started.`);
    throw err;
  }
}
