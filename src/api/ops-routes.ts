// /ops/… routes (admin only): snapshot runs from Temporal visibility, one run in detail, retry
// of a failed run through the same createImage path, and the hosts the store knows.
import { z } from 'zod';
import { ImageNotFound } from '../images/client';
import { conflict, notFound } from './api-errors';
import { HostsResponseSchema, OpsSnapshotsQuerySchema, RetryResponseSchema, SnapshotResponseSchema, SnapshotsResponseSchema, WorkflowIdSchema, type OpsSnapshotsQuery } from './api-schemas';
import { faultResponse, UNAUTHORIZED_RESPONSE } from './openapi';
import { defineRoute, type ApiRoute, type RequestContext } from './request-context';

const WorkflowParamsSchema = z.object({ workflow_id: z.string().describe('snapshot-<instance uuid>') });
const REFUSED = { ...UNAUTHORIZED_RESPONSE, 403: faultResponse('admin only') };

function workflowId(ctx: RequestContext): string {
  const raw = ctx.params.workflow_id ?? '';
  if (!WorkflowIdSchema.safeParse(raw).success) throw notFound(`Snapshot ${raw.slice(0, 80)} could not be found.`);
  return raw;
}

const listSnapshots = defineRoute<undefined, OpsSnapshotsQuery>({
  method: 'GET',
  url: '/ops/snapshots',
  adminOnly: true,
  versioned: false,
  schema: { summary: 'Snapshot runs from Temporal visibility (admin)', querystring: OpsSnapshotsQuerySchema, response: { 200: SnapshotsResponseSchema, 400: faultResponse('bad filter'), ...REFUSED } },
  async handle(ctx) {
    return { status: 200, body: { snapshots: await ctx.services.runs.list(ctx.query) } };
  },
});

const showSnapshot = defineRoute({
  method: 'GET',
  url: '/ops/snapshots/:workflow_id',
  adminOnly: true,
  versioned: false,
  schema: { summary: 'One snapshot run: steps, progress, error (admin)', params: WorkflowParamsSchema, response: { 200: SnapshotResponseSchema, ...REFUSED, 404: faultResponse('unknown workflow') } },
  async handle(ctx) {
    return { status: 200, body: { snapshot: await ctx.services.runs.detail(workflowId(ctx)) } };
  },
});

/**
 * A fresh run for the same instance and name after a failed one. It goes through SnapshotStarter,
 * so a new image record is created and task_state is CAS'd as for createImage; the new image is
 * owned by the instance's project. The failed run's image is removed if its compensation could not.
 */
const retrySnapshot = defineRoute({
  method: 'POST',
  url: '/ops/snapshots/:workflow_id/retry',
  adminOnly: true,
  versioned: false,
  schema: {
    summary: 'Retry a failed snapshot (admin)',
    params: WorkflowParamsSchema,
    response: { 202: RetryResponseSchema, ...REFUSED, 404: faultResponse('unknown workflow or instance'), 409: faultResponse('last run did not fail, or instance busy') },
  },
  async handle(ctx) {
    const id = workflowId(ctx);
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
    const started = await ctx.services.starter.start({ instance, name: input.name, metadata: input.metadata ?? {}, images, owner: instance.projectId ?? undefined, userId: ctx.identity.userId, requestId: ctx.requestId, projectId: ctx.identity.projectId ?? '' });
    ctx.log.info({ instance_uuid: instance.uuid, workflow_id: id, run_id: started.runId, image_id: started.imageId, failed_run_id: description.runId }, 'snapshot retried');
    return {
      status: 202,
      body: { snapshot: { workflowId: id, runId: started.runId, imageId: started.imageId, instanceUuid: instance.uuid, temporalUiUrl: runs.uiUrl(id, started.runId) } },
    };
  },
});

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

const listKnownHosts = defineRoute({
  method: 'GET',
  url: '/ops/hosts',
  adminOnly: true,
  versioned: false,
  schema: { summary: 'Compute hosts known from the instance store (admin)', response: { 200: HostsResponseSchema, ...REFUSED } },
  async handle(ctx) {
    return { status: 200, body: { hosts: await ctx.services.store.listHosts() } };
  },
});

export const OPS_ROUTES: readonly ApiRoute[] = [listSnapshots, showSnapshot, retrySnapshot, listKnownHosts];
