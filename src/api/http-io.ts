// Bounded JSON request bodies and JSON/empty responses on plain node:http.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyTooLarge, isJsonContentType, readBoundedBody } from '../net/http-body';
import { ApiError, badRequest, faultBody, INTERNAL_ERROR_MESSAGE } from './api-errors';

/** Nova's default [oslo_middleware] max_request_body_size. */
export const DEFAULT_MAX_BODY_BYTES = 114_688;

/**
 * Reads a JSON body. 415 for a non-JSON Content-Type, 413 before buffering more than `limit`
 * bytes, 400 for malformed JSON. A missing Content-Type is accepted (curl -d sends form type,
 * but some clients send none).
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonContentType(type)) throw new ApiError(415, 'Unsupported Content-Type');
  let text: string;
  try {
    text = (await readBoundedBody(req, limit)).toString('utf8');
  } catch (err) {
    if (err instanceof BodyTooLarge) throw new ApiError(413, 'Request is too large.');
    throw err;
  }
  if (text.trim().length === 0) throw badRequest('Malformed request body');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('Malformed request body');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

/**
 * Nova's fault body for `err`. When the request body was not read to the end the connection is
 * closed, since its remaining bytes would be taken for the next request.
 */
export function sendFault(req: IncomingMessage, res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = err instanceof ApiError ? err.status : 500;
  const message = err instanceof ApiError ? err.message : INTERNAL_ERROR_MESSAGE;
  const extra = err instanceof ApiError ? err.headers : {};
  sendJson(res, status, faultBody(status, message), { ...headers, ...extra, ...(req.complete ? {} : { Connection: 'close' }) });
}
