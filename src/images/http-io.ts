// Small node:http helpers: bounded JSON bodies and uniform JSON error responses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyTooLarge, isJsonContentType, readBoundedBody } from '../net/http-body';
import { ImageError, ImageRequestRejected, badRequest } from './image-errors';

/** Reads and parses a JSON body, refusing (413) anything larger than `limit` bytes before buffering it. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonContentType(type)) {
    throw new ImageRequestRejected(415, `Unsupported Content-Type ${type}; expected application/json`);
  }
  let text: string;
  try {
    text = (await readBoundedBody(req, limit)).toString('utf8');
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new ImageRequestRejected(413, err.message);
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('Request body is not valid JSON');
  }
}

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
