// What every handler receives (the caller, the negotiated version, the validated request, the
// shared services) and what it answers; and the route table's shape, schemas included, from which
// the app registers routes and the OpenAPI document is drawn.
import type { Logger } from 'pino';
import type { CinderClient } from '../cinder';
import type { ZodType, ZodTypeAny, ZodTypeDef } from 'zod';
import { mayActForProject, type Identity } from '../auth';
import type { ImageClient } from '../images/client';
import type { Instance, InstanceStore } from '../store';
import { serverNotFound } from './api-errors';
import type { Microversion } from './microversion';
import type { SnapshotRuns } from './snapshot-runs';
import type { SnapshotStarter } from './snapshot-starter';
import type { CreateBackupPolicy } from './backup-policy';
import type { TrustDelegator } from './volume-trust';
import type { BackupSchedules } from '../temporal/backup-schedules';

export interface ApiServices {
  store: InstanceStore;
  starter: SnapshotStarter;
  runs: SnapshotRuns;
  /** An image client acting with the caller's token (images belong to the caller's project). */
  imagesFor(token: string): ImageClient;
  /** Cinder acting for the caller in a project (SNAP_VOLUME_URL); absent without a volume service. */
  cinderFor?(token: string, projectId: string): CinderClient;
  /** Under Keystone: delegates a caller's roles to the workers for a volume-backed snapshot (Keystone trusts) */
  trusts?: TrustDelegator;
  baseUrl: string;
  imageUrl: string;
  /** os_compute_api:os-create-backup: who may call createBackup */
  createBackupPolicy: CreateBackupPolicy;
  /** instances' backup schedules (Temporal Schedules) */
  schedules: BackupSchedules;
  /** os_compute_api:os-backup-schedule: who may read and manage a server's backup schedule */
  backupSchedulePolicy: CreateBackupPolicy;
  /** Temporal Web UI base, for the links admins are shown */
  temporalUiUrl: string;
  log: Logger;
}

export interface RequestContext<Body = unknown, Query = unknown> {
  /** x-compute-request-id of this request (Nova's request_id) */
  requestId: string;
  identity: Identity;
  token: string;
  version: Microversion;
  /** Path parameters, decoded. */
  params: Record<string, string>;
  /** The body and query string as their route schemas parsed them. */
  body: Body;
  query: Query;
  services: ApiServices;
  log: Logger;
}

/** A handler's answer; the app adds the request id and microversion headers. No body means an empty one. */
export interface ApiAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ApiRouteSchema {
  summary: string;
  params?: ZodTypeAny;
  querystring?: ZodTypeAny;
  body?: ZodTypeAny;
  /** Documentation only: answers are serialized as they are (see api-app.ts). */
  response: Record<number, ZodTypeAny>;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Fastify's pattern, e.g. /v2.1/servers/:server_id */
  url: string;
  adminOnly: boolean;
  /** Compute routes negotiate a microversion; ops routes do not. */
  versioned: boolean;
  schema: ApiRouteSchema;
  /** Runs on the raw body before its schema's verdict (Nova names an unknown action before validating). */
  precheck?: (body: unknown) => void;
  // Method syntax on purpose: the app calls it only after the route's schemas accepted the request,
  // so a handler typed with those schemas' outputs is sound here.
  handle(ctx: RequestContext): Promise<ApiAnswer>;
}

type Parsed<T> = ZodType<T, ZodTypeDef, unknown>;

/** A route whose handler sees its body and query typed by their schemas. */
export function defineRoute<Body = undefined, Query = undefined>(route: Omit<ApiRoute, 'handle' | 'schema'> & {
  schema: Omit<ApiRouteSchema, 'body' | 'querystring'> & { body?: Parsed<Body>; querystring?: Parsed<Query> };
  handle(ctx: RequestContext<Body, Query>): Promise<ApiAnswer>;
}): ApiRoute {
  return route;
}

/** The instance if the caller may act on it: its own project's, or any for cloud admins (an ownerless one theirs only). Otherwise 404, as in Nova. */
export async function visibleInstance(ctx: Pick<RequestContext, 'services' | 'identity'>, id: string): Promise<Instance> {
  const instance = await ctx.services.store.get(id);
  if (instance === undefined || !mayActForProject(ctx.identity, instance.projectId)) throw serverNotFound(id);
  return instance;
}
