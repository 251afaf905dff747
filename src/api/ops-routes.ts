// /ops/… handlers (admin only): snapshot runs from Temporal visibility, one run in detail, retry
// of a failed run through the same createImage path, and the hosts the store knows.
import { ImageNotFound } from '../images';
import { conflict, badRequest, notFound } from './api-errors';
import { OpsSnapshotsQuerySchema, WorkflowIdSchema } from './api-schemas';
import { sendJson } from './http-io';
import type { RequestContext } from './request-context';
import { validationMessage } from './compute-routes';

function workflowId(raw: string): string {
  if (!WorkflowIdSchema.safeParse(raw).success) throw notFound(`Snapshot ${raw.slice(0, 80)} could not be found.`);
  return raw;
}

export async function listSnapshots(ctx: RequestContext): Promise<void> {
  const raw = Object.fromEntries(ctx.url.searchParams);
  const query = OpsSnapshotsQuerySchema.safeParse(raw);
  if (!query.success) throw badRequest(validationMessage(query.error, raw));
  const snapshots = await ctx.services.runs.list(query.data);
  sendJson(ctx.res, 200, { snapshots }, ctx.headers);
}

export async function showSnapshot(ctx: RequestContext, rawId: string): Promise<void> {
  const snapshot = await ctx.services.runs.detail(workflowId(rawId));
  sendJson(ctx.res, 200, { snapshot }, ctx.headers);
}

/**
 * A fresh run for the same instance and name after a failed one. It goes through SnapshotStarter,
 * so a new image record is created and task_state is CAS'd as for createImage; the new image is
 * owned by the instance's project. The failed run's image is removed if its compensation could not.
 */
export async function retrySnapshot(ctx: RequestContext, rawId: string): Promise<void> {
  const id = workflowId(rawId);
  const runs = ctx.services.runs;
  const description = await runs.describe(id);
  const last = runs.summary(description);
  if (last.state !== 'failed') throw conflict(`Snapshot ${id} is ${last.status.toLowerCase()}; only a failed snapshot can be retried.`);
  const input = await runs.input(id, description.runId);
  if (input === undefined) throw conflict(`Snapshot ${id} has no readable input to retry.`);
  const instance = await ctx.services.store.get(input.instanceUuid);
  if (instance === undefined) throw notFound(`Instance ${input.instanceUuid} could not be found.`);

  const images = ctx.services.imagesFor(ctx.token);
  if (last.imageId !== null) await removeLeftoverImage(ctx, last.imageId);
  const started = await ctx.services.starter.start({ instance, name: input.name, metadata: input.metadata ?? {}, images, owner: instance.projectId });
  ctx.log.info({ instance_uuid: instance.uuid, workflow_id: id, run_id: started.runId, image_id: started.imageId, failed_run_id: description.runId }, 'snapshot retried');
  sendJson(
    ctx.res,
    202,
    { snapshot: { workflowId: id, runId: started.runId, imageId: started.imageId, instanceUuid: instance.uuid, temporalUiUrl: runs.uiUrl(id, started.runId) } },
    ctx.headers,
  );
}

async function removeLeftoverImage(ctx: RequestContext, imageId: string): Promise<void> {
  const images = ctx.services.imagesFor(ctx.token);
  try {
    const image = await images.get(imageId);
    if (image.status !== 'active') {
      await images.delete(imageId);
      ctx.log.warn({ image_id: imageId }, 'removed the non-active image a failed snapshot left behind');
    }
  } catch (err) {
    if (!(err instanceof ImageNotFound)) ctx.log.warn({ err, image_id: imageId }, 'could not check the failed run\'s image');
  }
}

export async function listKnownHosts(ctx: RequestContext): Promise<void> {
  sendJson(ctx.res, 200, { hosts: await ctx.services.store.listHosts() }, ctx.headers);
}
