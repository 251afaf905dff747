// Glance-shaped HTTP answers on plain node:http: its refusals of a JSON body, JSON responses, error bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonBodyRefusals } from '../net/http-body';
import { ImageError, ImageRequestRejected, badRequest } from './image-errors';

/** Glance's answers to a refused JSON body: 415, 413 and 400 with its own texts. */
export const GLANCE_BODY_REFUSALS: JsonBodyRefusals = {
  unsupportedType: (type) => new ImageRequestRejected(415, `Unsupported Content-Type ${type}; expected application/json`),
  tooLarge: (err) => new ImageRequestRejected(413, err.message),
  malformed: () => badRequest('Request body is not valid JSON'),
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

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

/**
 * Answers with `{error: {code, title, message}}`. When the request body was not fully read the
 * connection is closed afterwards, since its remaining bytes cannot be told apart from the next request.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const status = err instanceof ImageError ? err.status : 500;
  const message = err instanceof ImageError ? err.message : 'The server has either erred or is incapable of performing the requested operation.';
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = req.complete ? {} : { Connection: 'close' };
  sendJson(res, status, { error: { code: status, title: TITLES[status] ?? 'Error', message } }, headers);
}
