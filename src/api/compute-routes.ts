// /v2.1/servers… routes: listing, show, the createImage and createBackup actions and a project-scoped snapshot
// progress view (what `snapctl snapshot --wait` polls; /ops needs admin).
import { z } from 'zod';
import { isCloudAdmin } from '../auth';
import { snapshotWorkflowId } from '../contract';
import { ApiError, badRequest, forbidden, notFound } from './api-errors';
import { createBackup, CreateBackupBodySchema, refuseUnknownActions } from './backup-action';
import {
  CreateImageBodySchema,
  CreateImageResponseSchema,
  ServerIdSchema,
  ServerResponseSchema,
  ServersDetailResponseSchema,
  ServersQuerySchema,
  ServersResponseSchema,
  SnapshotResponseSchema,
} from './api-schemas';
import { IMAGE_ID_BODY_VERSION, atLeast } from './microversion';
import { faultResponse, UNAUTHORIZED_RESPONSE } from './openapi';
import { defineRoute, visibleInstance, type ApiRoute, type RequestContext } from './request-context';
import { serverDetail, serverSummary, type ViewContext } from './server-view';
import { requestTrust } from './volume-trust';

const ServerParamsSchema = z.object({ server_id: z.string().describe('server uuid') });

function viewContext(ctx: RequestContext): ViewContext {
  return { baseUrl: ctx.services.baseUrl, imageUrl: ctx.services.imageUrl, isAdmin: isCloudAdmin(ctx.identity), version: ctx.version };
}

export function serverId(ctx: RequestContext): string {
  const raw = ctx.params.server_id ?? '';
  // Nova answers 404 for an id that cannot be a server (the DB lookup finds nothing).
  if (!ServerIdSchema.safeParse(raw).success) throw notFound(`Instance ${raw.slice(0, 64)} could not be found.`);
  return raw;
}

/** Nova's all_tenants: a cloud admin's listing of every project; anyone else asking gets 403 under `policy`. */
export function wantsAllTenants(ctx: RequestContext<unknown, { all_tenants?: string }>, policy: string): boolean {
  const all = ctx.query.all_tenants !== undefined && ['1', 'true', 'True'].includes(ctx.query.all_tenants);
  if (all && !isCloudAdmin(ctx.identity)) throw forbidden(`Policy doesn't allow ${policy} to be performed.`);
  return all;
}

export async function listed(ctx: RequestContext<undefined, z.infer<typeof ServersQuerySchema>>) {
  if (wantsAllTenants(ctx, 'os_compute_api:servers:index:get_all_tenants')) return ctx.services.store.listAll();
  // A system-scoped admin has no project of its own: all_tenants lists everything, ownerless servers too.
  return ctx.identity.projectId === null ? [] : ctx.services.store.listByProject(ctx.identity.projectId);
}

/** The server actions this API implements; the precheck makes sure exactly one of them is present. */
const ServerActionSchema = z
  .object({ createImage: CreateImageBodySchema.optional(), createBackup: CreateBackupBodySchema.optional() })
  .strict()
  .describe('Server action createImage (snapshot) or createBackup (backup with rotation)');
const SERVER_ACTIONS = ['createImage', 'createBackup'];

/** GET /v2.1/servers and /v2.1/servers/detail: the same listing, in the summary or the detail view. */
function serverList(url: string, summary: string, response: typeof ServersResponseSchema | typeof ServersDetailResponseSchema, view: typeof serverSummary | typeof serverDetail): ApiRoute {
  return defineRoute<undefined, z.infer<typeof ServersQuerySchema>>({
    method: 'GET',
    url,
    adminOnly: false,
    versioned: true,
    schema: { summary, querystring: ServersQuerySchema, response: { 200: response, ...UNAUTHORIZED_RESPONSE, 403: faultResponse('all_tenants without admin') } },
    async handle(ctx) {
      const viewed = viewContext(ctx);
      return { status: 200, body: { servers: (await listed(ctx)).map((i) => view(viewed, i, false)) } };
    },
  });
}

const listServers = serverList('/v2.1/servers', 'List servers of the token\'s project (all_tenants=1 for admins)', ServersResponseSchema, serverSummary);
const listServersDetail = serverList('/v2.1/servers/detail', 'List servers with details', ServersDetailResponseSchema, serverDetail);

const showServer = defineRoute({
  method: 'GET',
  url: '/v2.1/servers/:server_id',
  adminOnly: false,
  versioned: true,
  schema: { summary: 'Show a server', params: ServerParamsSchema, response: { 200: ServerResponseSchema, ...UNAUTHORIZED_RESPONSE, 404: faultResponse('unknown server or another project\'s') } },
  async handle(ctx) {
    const instance = await visibleInstance(ctx, serverId(ctx));
    return { status: 200, body: { server: serverDetail(viewContext(ctx), instance, true) } };
  },
});

/** POST /v2.1/servers/{id}/action — createImage and createBackup are implemented here. */
const serverAction = defineRoute<z.infer<typeof ServerActionSchema>>({
  method: 'POST',
  url: '/v2.1/servers/:server_id/action',
  adminOnly: false,
  versioned: true,
  precheck: (body) => refuseUnknownActions(body, SERVER_ACTIONS),
  schema: {
    summary: 'createImage: snapshot a server; createBackup: back it up and rotate the older backups of the type',
    params: ServerParamsSchema,
    body: ServerActionSchema,
    response: {
      202: CreateImageResponseSchema.describe('accepted; Location header points at the image (createBackup: only when rotation > 0). Body {"image_id"} from 2.45, empty before'),
      400: faultResponse('invalid body'),
      ...UNAUTHORIZED_RESPONSE,
      403: faultResponse('image metadata or image quota exceeded; a volume-backed server over its Cinder snapshot quota; Keystone refused the trust for the workers; createBackup refused by its policy'),
      404: faultResponse('unknown server or another project\'s'),
      409: faultResponse('task_state set or vm_state not active/stopped/paused/suspended'),
      413: faultResponse('body too large'),
      415: faultResponse('not application/json'),
      503: faultResponse('image service, Keystone or Temporal unavailable; nothing was changed'),
    },
  },
  async handle(ctx) {
    if (ctx.body.createBackup !== undefined) return createBackup(ctx, serverId(ctx), ctx.body.createBackup);
    if (ctx.body.createImage === undefined) throw badRequest('Malformed request body');
    const { name, metadata } = ctx.body.createImage;
    const instance = await visibleInstance(ctx, serverId(ctx));
    // A system-scoped admin has no project to own the image: it goes to the server's project.
    const owner = ctx.identity.projectId === null ? (instance.projectId ?? undefined) : undefined;
    const cinder = instance.projectId === null ? undefined : ctx.services.cinderFor?.(ctx.token, instance.projectId);
    const snapshotQuota = cinder === undefined ? undefined : () => cinder.snapshotQuota();
    const started = await ctx.services.starter.start({ instance, name, metadata: metadata ?? {}, images: ctx.services.imagesFor(ctx.token), owner, userId: ctx.identity.userId, requestId: ctx.requestId, projectId: ctx.identity.projectId ?? '', snapshotQuota, trust: requestTrust(ctx, instance) });
    ctx.log.info({ instance_uuid: instance.uuid, workflow_id: started.workflowId, image_id: started.imageId }, 'createImage accepted');
    const headers = { Location: `${ctx.services.imageUrl}/v2/images/${started.imageId}` };
    return atLeast(ctx.version, IMAGE_ID_BODY_VERSION) ? { status: 202, body: { image_id: started.imageId }, headers } : { status: 202, headers };
  },
});

/** GET /v2.1/servers/{id}/snapshot-progress — the latest snapshot run of a server the caller can see. */
const snapshotProgress = defineRoute({
  method: 'GET',
  url: '/v2.1/servers/:server_id/snapshot-progress',
  adminOnly: false,
  versioned: true,
  schema: { summary: 'Latest snapshot run of a server (project-scoped)', params: ServerParamsSchema, response: { 200: SnapshotResponseSchema, ...UNAUTHORIZED_RESPONSE, 404: faultResponse('no such server or never snapshotted') } },
  async handle(ctx) {
    const instance = await visibleInstance(ctx, serverId(ctx));
    try {
      return { status: 200, body: { snapshot: await ctx.services.runs.detail(snapshotWorkflowId(instance.uuid), { forMember: !isCloudAdmin(ctx.identity) }) } };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) throw notFound(`No snapshot of instance ${instance.uuid} has been started.`);
      throw err;
    }
  },
});

export const COMPUTE_ROUTES: readonly ApiRoute[] = [listServers, listServersDetail, showServer, serverAction, snapshotProgress];
