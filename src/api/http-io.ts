// Nova's rules for a request body: JSON only (a missing Content-Type too, since some clients send
// none), refused before it is read when its type is wrong, and Nova's own texts for each refusal.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { frameworkRefusal, isJsonContentType } from '../http';

import { ApiError, badRequest } from './api-errors';

/** Nova's default [oslo_middleware] max_request_body_size. */
export const DEFAULT_MAX_BODY_BYTES = 114_688;

const unsupportedType = () => new ApiError(415, 'Unsupported Content-Type');
const malformed = () => badRequest('Malformed request body');

/** Every body is parsed as JSON; the type was checked by refuseNonJsonBody. */
export function parseBodiesAsJson(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, text, done) => {
    try {
      done(null, JSON.parse(String(text)) as unknown);
    } catch {
      done(malformed(), undefined);
    }
  });
}

/** A route's preParsing hook: 415 before a byte of a non-JSON body is read. */
export async function refuseNonJsonBody(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const type = request.headers['content-type'];
  if (type !== undefined && !isJsonContentType(type)) throw unsupportedType();
}

/** Nova's fault for what Fastify refused before a handler ran; undefined when it is not such a refusal. */
export function novaRefusal(err: unknown): ApiError | undefined {
  switch (frameworkRefusal(err)) {
    case 'unsupported-type':
      return unsupportedType();
    case 'too-large':
      return new ApiError(413, 'Request is too large.');
    case 'malformed':
    case 'invalid':
      return malformed();
    case 'not-found':
      return new ApiError(404, 'The resource could not be found.');
    default:
      return undefined;
  }
}
