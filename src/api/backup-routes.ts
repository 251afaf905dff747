// Backup reporting under the compute API (an extension; Nova has none): each instance's backups
// (images with image_type backup) with their backup_type, kind (full or incremental over a parent),
// size, age and the schedule that made them. What a caller sees is what the image service shows its
// token: a member its project's backups, a cloud admin every project's (all_tenants=1 on the list
// of all instances, as Nova's servers listing has it).
import { z } from 'zod';
import type { Image } from '../images/client';
import { BACKUP_SCHEDULE_PROPERTY } from '../images/client';
import { serverId, wantsAllTenants } from './compute-routes';
import { faultResponse, UNAUTHORIZED_RESPONSE } from './openapi';
import { defineRoute, visibleInstance, type ApiRoute, type RequestContext } from './request-context';

export const BackupViewSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  status: z.string(),
  server_id: z.string(),
  project_id: z.string().nullable(),
  backup_type: z.string(),
  kind: z.enum(['full', 'incremental']).describe('incremental: composed over parent_image_id, yet downloads whole on its own'),
  parent_image_id: z.string().nullable(),
  size: z.number().nullable(),
  created_at: z.string(),
  age_seconds: z.number().int().describe('seconds since created_at, by the API\'s clock'),
  backup_schedule_id: z.string().nullable().describe('the schedule that made it; null for createBackup'),
});
export type BackupView = z.infer<typeof BackupViewSchema>;

const BackupsResponseSchema = z.object({ backups: z.array(BackupViewSchema) });

const BackupsQuerySchema = z
  .object({
    backup_type: z.string().max(255).optional().describe('only backups of this type'),
    all_tenants: z.enum(['1', 'true', 'True', '0', 'false', 'False']).optional().describe('admins: every project\'s backups'),
  })
  .strict();
type BackupsQuery = z.infer<typeof BackupsQuerySchema>;

const ServerParamsSchema = z.object({ server_id: z.string().describe('server uuid') });

function isBackup(image: Image, query: BackupsQuery): boolean {
  return image.properties.image_type === 'backup' && image.properties.instance_uuid !== undefined && (query.backup_type === undefined || image.properties.backup_type === query.backup_type);
}

export function backupView(image: Image, now: number): BackupView {
  const p = image.properties;
  const incremental = p.snapshot_kind === 'incremental';
  return {
    id: image.id,
    name: image.name,
    status: image.status,
    server_id: p.instance_uuid ?? '',
    project_id: image.owner,
    backup_type: p.backup_type ?? '',
    kind: incremental ? 'incremental' : 'full',
    parent_image_id: incremental ? (p.snapshot_parent_image ?? null) : null,
    size: image.size,
    created_at: image.created_at,
    age_seconds: Math.max(0, Math.floor((now - Date.parse(image.created_at)) / 1000)),
    backup_schedule_id: p[BACKUP_SCHEDULE_PROPERTY] ?? null,
  };
}

/** By server, then newest first (Glance's created_at desc, the id as the tie-break). */
function byServerNewestFirst(a: BackupView, b: BackupView): number {
  if (a.server_id !== b.server_id) return a.server_id.localeCompare(b.server_id);
  if (a.created_at !== b.created_at) return b.created_at.localeCompare(a.created_at);
  return b.id.localeCompare(a.id);
}

async function backupsSeen(ctx: RequestContext<unknown, BackupsQuery>, keep: (image: Image) => boolean): Promise<BackupView[]> {
  const images = await ctx.services.imagesFor(ctx.token).list();
  const now = Date.now();
  return images.filter((i) => i.status !== 'deleted' && isBackup(i, ctx.query) && keep(i)).map((i) => backupView(i, now)).sort(byServerNewestFirst);
}

const listServerBackups = defineRoute<undefined, BackupsQuery>({
  method: 'GET',
  url: '/v2.1/servers/:server_id/os-backups',
  adminOnly: false,
  versioned: true,
  schema: {
    summary: 'A server\'s backups: type, kind, size, age, the schedule that made each (project-scoped)',
    params: ServerParamsSchema,
    querystring: BackupsQuerySchema,
    response: { 200: BackupsResponseSchema, 400: faultResponse('unknown query parameter'), ...UNAUTHORIZED_RESPONSE, 404: faultResponse('unknown server or another project\'s') },
  },
  async handle(ctx) {
    const instance = await visibleInstance(ctx, serverId(ctx));
    return { status: 200, body: { backups: await backupsSeen(ctx, (i) => i.properties.instance_uuid === instance.uuid) } };
  },
});

const listAllBackups = defineRoute<undefined, BackupsQuery>({
  method: 'GET',
  url: '/v2.1/os-backups',
  adminOnly: false,
  versioned: true,
  schema: {
    summary: 'Every backup of the token\'s project, by server (all_tenants=1 for admins: every project\'s)',
    querystring: BackupsQuerySchema,
    response: { 200: BackupsResponseSchema, 400: faultResponse('unknown query parameter'), ...UNAUTHORIZED_RESPONSE, 403: faultResponse('all_tenants without admin') },
  },
  async handle(ctx) {
    const all = wantsAllTenants(ctx, 'os_compute_api:os-backups:index:get_all_tenants');
    const project = ctx.identity.projectId;
    // A system-scoped admin has no project of its own: without all_tenants it sees none, as with servers.
    return { status: 200, body: { backups: await backupsSeen(ctx, (i) => all || (project !== null && i.owner === project)) } };
  },
});

export const BACKUP_ROUTES: readonly ApiRoute[] = [listServerBackups, listAllBackups];
