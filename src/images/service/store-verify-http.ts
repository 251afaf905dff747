// The admin route of the store's verify jobs: GET shows the job running (or the last one) and the
// schedule, POST starts a job now (202; 409 while one runs). Cloud admins only: a job reads every
// project's data and its result names every project's damaged images.
import type { FastifyRequest } from 'fastify';
import type { HttpApp } from '../../http';
import { forbidden } from '../client/image-errors';
import { STORE_VERIFY_URL } from '../client/store-verify-wire';
import type { RequestContext } from './image-auth';
import type { ImageService } from './image-service';
import { JSON_TYPE } from './http-io';

/** 403 unless the caller is a cloud admin: the store's admin routes read every project's data. */
export function requireCloudAdmin(ctx: RequestContext, what: string): void {
  if (!ctx.isAdmin) throw forbidden(`Only a cloud admin may ${what}.`);
}

export function storeVerifyRoutes(app: HttpApp, x: { service: ImageService; caller: (request: FastifyRequest) => RequestContext }): void {
  app.get(STORE_VERIFY_URL, async (request, reply) => {
    requireCloudAdmin(x.caller(request), 'see or start the store verify jobs');
    return reply.type(JSON_TYPE).send(x.service.verifyJobs.status());
  });
  app.post(STORE_VERIFY_URL, async (request, reply) => {
    requireCloudAdmin(x.caller(request), 'see or start the store verify jobs');
    const { job } = x.service.verifyJobs.start('request');
    return reply.code(202).type(JSON_TYPE).send({ job });
  });
}
