// HTTP front of the named upload's chunks (protocol 2, client/chunk-wire.ts): POST
// /v2/images/{id}/chunks/known answers which names the upload may use unsent, PUT
// /v2/images/{id}/chunks/{sha256} takes one chunk's bytes. Both need the image's open named upload
// and the right to write the image (the snapshot service's write lock). Semantics live in
// named-chunk-sessions.ts.
import type { FastifyRequest } from 'fastify';
import type { HttpApp as ImageRouteScope } from '../../http';
import { parseOrThrow } from '../../config/validation';
import { CHUNK_URL, ChunkNameSchema, KNOWN_CHUNKS_URL, KnownChunksBodySchema, type KnownChunksAnswer } from '../client/chunk-wire';
import { badRequest } from '../client/image-errors';
import type { RequestContext } from './image-auth';
import type { ImageService } from './image-service';
import { JSON_TYPE, jsonBody, mediaType, requireContentType, requireJson } from './http-io';

export { CHUNK_URL, KNOWN_CHUNKS_URL };

interface Exchange {
  service: ImageService;
  caller: (request: FastifyRequest) => RequestContext;
}

/** POST known: a JSON body. */
export function chunkJsonRoutes(scope: ImageRouteScope, x: Exchange): void {
  scope.post<{ Params: { image_id: string } }>(KNOWN_CHUNKS_URL, { preParsing: requireJson }, async (request, reply) => {
    const id = request.params.image_id;
    const { owner } = x.service.resumable.namedUpload(x.caller(request), id);
    const body = parseOrThrow(KnownChunksBodySchema, jsonBody(request), (issues) => badRequest(`Invalid known-chunks question: ${issues}`), 'body');
    const answer: KnownChunksAnswer = { known: await x.service.namedChunks.known(id, owner, body.chunks) };
    return reply.type(JSON_TYPE).send(answer);
  });
}

const requireOctetStream = requireContentType(
  (request) => mediaType(request) === 'application/octet-stream',
  (request) => `Unsupported Content-Type '${String(request.headers['content-type'])}'; a chunk is application/octet-stream`,
);

/** PUT chunk: the body is streamed, at most one chunk's bytes. */
export function chunkStreamRoutes(scope: ImageRouteScope, x: Exchange): void {
  scope.put<{ Params: { image_id: string; chunk: string } }>(CHUNK_URL, { preParsing: requireOctetStream }, async (request, reply) => {
    const id = request.params.image_id;
    x.service.resumable.namedUpload(x.caller(request), id);
    const name = ChunkNameSchema.safeParse(request.params.chunk);
    if (!name.success) throw badRequest(`Invalid chunk name '${request.params.chunk}': 64 lowercase hex digits, the SHA-256 of its bytes`);
    await x.service.namedChunks.receive(id, name.data, request.raw);
    return reply.code(204).send();
  });
}
