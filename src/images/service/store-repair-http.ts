// The admin route of the store's repair pass: POST runs it now and answers what it removed. Cloud
// admins only: it reads every project's indexes. It waits for a delete's reclaim or a commit's
// count in flight (and they for it); composes and downloads go on.
import type { FastifyRequest } from 'fastify';
import type { HttpApp } from '../../http';
import { STORE_REPAIR_URL, type StoreRepair } from '../client/store-repair-wire';
import type { RequestContext } from './image-auth';
import type { ImageService } from './image-service';
import { JSON_TYPE } from './http-io';
import { requireCloudAdmin } from './store-verify-http';

export function storeRepairRoutes(app: HttpApp, x: { service: ImageService; caller: (request: FastifyRequest) => RequestContext }): void {
  app.post(STORE_REPAIR_URL, async (request, reply) => {
    requireCloudAdmin(x.caller(request), 'run the store repair pass');
    const outcome = await x.service.collectChunks();
    const body: StoreRepair = {
      removed_indexes: outcome.removedIndexes,
      removed_chunks: outcome.removedChunks,
      removed_bytes: outcome.removedBytes,
      kept_chunks: outcome.keptChunks,
      counted_chunks: x.service.countedChunks,
    };
    return reply.type(JSON_TYPE).send(body);
  });
}
