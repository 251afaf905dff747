// What every handler receives: the parsed request, the caller and the shared services.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../auth';
import type { ImageClient } from '../images';
import type { Instance, InstanceStore } from '../store';
import { serverNotFound } from './api-errors';
import type { Microversion } from './microversion';
import type { SnapshotRuns } from './snapshot-runs';
import type { SnapshotStarter } from './snapshot-starter';

export interface ApiServices {
  store: InstanceStore;
  starter: SnapshotStarter;
  runs: SnapshotRuns;
  /** An image client acting with the caller's token (images belong to the caller's project). */
  imagesFor(token: string): ImageClient;
  baseUrl: string;
  imageUrl: string;
  maxBodyBytes: number;
  log: Logger;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  identity: Identity;
  token: string;
  version: Microversion;
  /** Headers every answer carries (request id, microversion). */
  headers: Record<string, string>;
  services: ApiServices;
  log: Logger;
}

/** The instance if the caller may see it: its own project's, or any for admins. Otherwise 404, as in Nova. */
export async function visibleInstance(ctx: RequestContext, id: string): Promise<Instance> {
  const instance = await ctx.services.store.get(id);
  if (instance === undefined || (!ctx.identity.isAdmin && instance.projectId !== ctx.identity.projectId)) throw serverNotFound(id);
  return instance;
}
