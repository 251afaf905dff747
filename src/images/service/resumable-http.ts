// HTTP front of the resumable upload extension (contract in src/images/README.md):
// /v2/images/{id}/resumable (POST open, HEAD/GET state, PATCH append, DELETE discard) and
// /v2/images/{id}/resumable/commit (POST). Semantics live in resumable-uploads.ts. The routes are
// registered into the app's scopes by the kind of body they take.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { toGlanceView } from '../client/glance-image-view';
import type { RequestContext } from './image-auth';
import { ImageTooLarge, StagedOffsetMismatch, badRequest } from '../client/image-errors';
import type { ImageService } from './image-service';
import { JSON_TYPE, declaredLength, jsonBody, mediaType, requireContentType, requireJson } from './http-io';
import {
  OFFSET_OCTET_STREAM,
  RESUMABLE_HEADER,
  RESUMABLE_VERSION,
  UPLOAD_LENGTH_HEADER,
  UPLOAD_OFFSET_HEADER,
  parseOffsetHeader,
  type StagedUploadState,
} from '../client/resumable-wire';
import type { HttpApp as ImageRouteScope } from '../../http';

export const RESUMABLE_URL = '/v2/images/:image_id/resumable';
export const RESUMABLE_COMMIT_URL = '/v2/images/:image_id/resumable/commit';

interface Exchange {
  service: ImageService;
  caller: (request: FastifyRequest) => RequestContext;
  /** the open body carries a logical upload's layout: bounded by the image size cap, not by the metadata limit */
  openBodyLimit: number;
}

/** The image id, once the image is known to exist for the caller; from here on answers say so. */
function found(x: Exchange, request: FastifyRequest<{ Params: { image_id: string } }>, reply: FastifyReply): { ctx: RequestContext; id: string } {
  const ctx = x.caller(request);
  const id = request.params.image_id;
  x.service.get(ctx, id);
  reply.header(RESUMABLE_HEADER, RESUMABLE_VERSION);
  return { ctx, id };
}

function stateHeaders(state: StagedUploadState): Record<string, string> {
  return { [UPLOAD_OFFSET_HEADER]: String(state.offset), [UPLOAD_LENGTH_HEADER]: String(state.size), 'Cache-Control': 'no-store' };
}

/** POST open and POST commit: JSON bodies. */
export function resumableJsonRoutes(scope: ImageRouteScope, x: Exchange): void {
  scope.post<{ Params: { image_id: string } }>(RESUMABLE_COMMIT_URL, { preParsing: requireJson }, async (request, reply) => {
    const { ctx, id } = found(x, request, reply);
    return reply.type(JSON_TYPE).send(toGlanceView(await x.service.resumable.commit(ctx, id, jsonBody(request))));
  });
  scope.post<{ Params: { image_id: string } }>(RESUMABLE_URL, { preParsing: requireJson, bodyLimit: x.openBodyLimit }, async (request, reply) => {
    const { ctx, id } = found(x, request, reply);
    const { state, created } = await x.service.resumable.open(ctx, id, jsonBody(request));
    return reply.code(created ? 201 : 200).headers(stateHeaders(state)).type(JSON_TYPE).send(state);
  });
}

/** HEAD/GET state and DELETE: no body. */
export function resumableBodilessRoutes(scope: ImageRouteScope, x: Exchange): void {
  scope.head<{ Params: { image_id: string } }>(RESUMABLE_URL, async (request, reply) => {
    const { ctx, id } = found(x, request, reply);
    return reply.headers(stateHeaders(x.service.resumable.state(ctx, id))).send();
  });
  scope.get<{ Params: { image_id: string } }>(RESUMABLE_URL, async (request, reply) => {
    const { ctx, id } = found(x, request, reply);
    const state = x.service.resumable.state(ctx, id);
    return reply.headers(stateHeaders(state)).type(JSON_TYPE).send(state);
  });
  scope.delete<{ Params: { image_id: string } }>(RESUMABLE_URL, async (request, reply) => {
    const { ctx, id } = found(x, request, reply);
    await x.service.resumable.discard(ctx, id);
    return reply.code(204).send();
  });
}

const requireOffsetStream = requireContentType(
  (request) => mediaType(request) === OFFSET_OCTET_STREAM,
  (request) => `Unsupported Content-Type '${String(request.headers['content-type'])}'; appended data must be ${OFFSET_OCTET_STREAM}`,
);

/** PATCH append: the body is streamed into the session. */
export function resumableStreamRoutes(scope: ImageRouteScope, x: Exchange): void {
  scope.patch<{ Params: { image_id: string } }>(RESUMABLE_URL, { preParsing: requireOffsetStream }, async (request, reply) => {
    const { ctx, id } = found(x, request, reply);
    const offset = parseOffsetHeader(request.headers['upload-offset']);
    if (offset === undefined) throw badRequest(`${UPLOAD_OFFSET_HEADER} header required: the decimal byte offset the body starts at`);
    try {
      const state = await x.service.resumable.append(ctx, id, offset, request.raw, declaredLength(request));
      return reply.code(204).headers(stateHeaders(state)).send();
    } catch (err) {
      // The committed offset travels with the refusals a client resumes from; a busy 409 has none.
      if (err instanceof StagedOffsetMismatch) reply.header(UPLOAD_OFFSET_HEADER, String(err.committedOffset));
      else if (err instanceof ImageTooLarge) {
        const state = currentState(x, ctx, id);
        if (state !== undefined) reply.header(UPLOAD_OFFSET_HEADER, String(state.offset));
      }
      throw err;
    }
  });
}

function currentState(x: Exchange, ctx: RequestContext, id: string): StagedUploadState | undefined {
  try {
    return x.service.resumable.state(ctx, id);
  } catch {
    return undefined;
  }
}
