// Glance's rules for bodies and errors on Fastify: which Content-Type each kind of route takes
// (checked before a byte is read), JSON bodies bounded and parsed, image data left as a stream for
// the service, and Glance's `{"error": {code, title, message}}` for every refusal.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { frameworkRefusal, isJsonContentType } from '../../http';

import { ImageError, ImageRequestRejected, badRequest } from '../client/image-errors';

export const JSON_TYPE = 'application/json; charset=UTF-8';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export const INTERNAL_ERROR = 'The server has either erred or is incapable of performing the requested operation.';

export function glanceErrorBody(status: number, message: string): unknown {
  return { error: { code: status, title: TITLES[status] ?? 'Error', message } };
}

/** The typed error an answer is made of: the service's own, or Glance's word for what Fastify refused. */
export function imageErrorOf(err: unknown, maxJsonBytes: number): ImageError | undefined {
  if (err instanceof ImageError) return err;
  switch (frameworkRefusal(err)) {
    case 'unsupported-type':
      return new ImageRequestRejected(415, 'Unsupported Content-Type');
    case 'too-large':
      return new ImageRequestRejected(413, `Request body exceeds ${maxJsonBytes} bytes`);
    case 'malformed':
      return badRequest('Request body is not valid JSON');
    case 'not-found':
      return new ImageRequestRejected(404, 'The resource could not be found.');
    default:
      return undefined;
  }
}

/** The media type without parameters, lower-cased; '' when none was sent. */
export function mediaType(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** A preParsing hook refusing, before the body is read, a Content-Type `accepts` does not take. */
export function requireContentType(accepts: (request: FastifyRequest) => boolean, refusal: (request: FastifyRequest) => string) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (!accepts(request)) throw new ImageRequestRejected(415, refusal(request));
  };
}

/** JSON routes: application/json (or +json), or no Content-Type at all, as Glance's clients send. */
export const requireJson = requireContentType(
  (request) => request.headers['content-type'] === undefined || isJsonContentType(request.headers['content-type']),
  (request) => `Unsupported Content-Type ${String(request.headers['content-type'])}; expected application/json`,
);

/** Bodies of this scope are text of at most `limit` bytes, parsed as JSON (the route checked the type). */
export function parseJsonBodies(scope: FastifyInstance, limit: number): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: limit }, (_request, text, done) => {
    try {
      done(null, JSON.parse(String(text)) as unknown);
    } catch {
      done(badRequest('Request body is not valid JSON'), undefined);
    }
  });
}

/** Bodies of this scope stay unread: the handler streams request.raw into the service. */
export function streamBodies(scope: FastifyInstance): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
}

/** The parsed JSON body; an empty one is not JSON either. */
export function jsonBody(request: FastifyRequest): unknown {
  if (request.body === undefined) throw badRequest('Request body is not valid JSON');
  return request.body;
}

/** A Content-Length the client declared, when it is a number. */
export function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  const declared = header === undefined ? undefined : Number(header);
  return Number.isFinite(declared) ? declared : undefined;
}
