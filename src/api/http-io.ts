// Nova-shaped HTTP answers on plain node:http: its refusals of a JSON body, JSON/empty responses, fault bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonBodyRefusals } from '../net/http-body';
import { ApiError, badRequest, faultBody, INTERNAL_ERROR_MESSAGE } from './api-errors';

/** Nova's default [oslo_middleware] max_request_body_size. */
export const DEFAULT_MAX_BODY_BYTES = 114_688;

/** Nova's answers to a refused JSON body: 415, 413 and 400 with its own texts. */
export const NOVA_BODY_REFUSALS: JsonBodyRefusals = {
  unsupportedType: () => new ApiError(415, 'Unsupported Content-Type'),
  tooLarge: () => new ApiError(413, 'Request is too large.'),
  malformed: () => badRequest('Malformed request body'),
};

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
